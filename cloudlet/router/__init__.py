"""The data plane: routes app traffic by Host to the instances of each revision.

It runs as its own process (``python -m cloudlet.router``) and learns routes and instances
from the control plane through a small feed (:mod:`cloudlet.router.feed`). It imports nothing
of the control plane, the store or the builder.
"""
