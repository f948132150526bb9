"""The web dashboard, served at / by the control plane (`routes.router`)."""
