import socket

BUFFER: list[str] = []


def flush() -> None:
    if not BUFFER:
        return
    sock = socket.create_connection(("metrics.internal", 2003), timeout=2)
    sock.sendall("".join(BUFFER).encode())
    sock.close()
    BUFFER.clear()
