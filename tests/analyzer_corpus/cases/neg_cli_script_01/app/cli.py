import typer

from app.maintenance import backup, purge_sessions, wait_for_db

cli = typer.Typer()


@cli.command()
def nightly(db: str = "/var/lib/app/app.db") -> None:
    wait_for_db(db)
    backup(db, db + ".bak")
    typer.echo(f"purged {purge_sessions(db)} sessions")


if __name__ == "__main__":
    cli()
