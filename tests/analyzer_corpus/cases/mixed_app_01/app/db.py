from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql+psycopg2://shop@db/shop", pool_size=10)
SessionLocal = sessionmaker(bind=engine)
