import dns.asyncresolver
import dns.resolver
from fastapi import FastAPI

app = FastAPI()


@app.get("/domains/{domain}/verify")
async def verify(domain: str, token: str):
    answers = dns.resolver.resolve(f"_verify.{domain}", "TXT", lifetime=5)
    return {"verified": any(token in r.to_text() for r in answers)}


@app.get("/domains/{domain}/mx")
async def mx(domain: str):
    answers = await dns.asyncresolver.resolve(domain, "MX", lifetime=5)
    return sorted(r.exchange.to_text() for r in answers)
