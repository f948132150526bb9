import asyncio
import json
import subprocess

PROGRESS: dict[str, float] = {}


async def transcode_loop(queue: asyncio.Queue[str]) -> None:
    while True:
        key = await queue.get()
        proc = await asyncio.create_subprocess_exec("ffmpeg", "-i", key, key + ".mp4")
        await proc.wait()
        probe = subprocess.run(["ffprobe", "-print_format", "json", "-show_format", key + ".mp4"],
                               capture_output=True, check=True)
        PROGRESS[key] = float(json.loads(probe.stdout)["format"]["duration"])
