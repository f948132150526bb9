# Building this package takes a few seconds on purpose: the restart tests need a build that is
# still running when the control plane is killed.
import time

from setuptools import setup

time.sleep(6)
setup(py_modules=["slowpkg"])
