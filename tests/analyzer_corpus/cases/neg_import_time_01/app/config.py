import json
import subprocess
from pathlib import Path

import requests

CONFIG = json.loads(Path("/etc/app/config.json").read_text())
with open("/etc/app/banner.txt") as _fh:
    BANNER = _fh.read()
REMOTE_FLAGS = requests.get("https://flags.internal/defaults", timeout=5).json()
GIT_REV = subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip()


class Limits:
    table = json.load(open("/etc/app/limits.json"))
