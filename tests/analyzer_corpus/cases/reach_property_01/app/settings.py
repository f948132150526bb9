from pathlib import Path


class Settings:
    secrets_dir = Path("/run/secrets")

    @property
    def signing_key(self) -> bytes:
        return (self.secrets_dir / "signing_key").read_bytes()


settings = Settings()
