import pandas as pd


async def generate(user_id: int) -> None:
    df = pd.read_csv(f"/data/events/{user_id}.csv")
    df.groupby("day").sum().to_parquet(f"/data/reports/{user_id}.parquet")


def generate_sync(user_id: int) -> None:
    df = pd.read_csv(f"/data/events/{user_id}.csv")
    df.groupby("day").sum().to_parquet(f"/data/reports/{user_id}.parquet")
