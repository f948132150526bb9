import json


def load_flags() -> dict:
    with open("/etc/app/flags.json") as fh:
        return json.load(fh)
