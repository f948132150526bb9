import socket

from fastapi import FastAPI

app = FastAPI()


@app.get("/whois/{domain}")
async def whois(domain: str):
    with socket.create_connection(("whois.iana.org", 43), timeout=5) as sock:
        sock.sendall(f"{domain}\r\n".encode())
        chunks = []
        while data := sock.recv(4096):
            chunks.append(data)
    return {"whois": b"".join(chunks).decode(errors="replace")}


@app.get("/ip/{host}")
async def ip(host: str):
    return {"ip": socket.gethostbyname(host)}
