#!/bin/sh
# A virtual environment with TensorFlow (CPU) and Keras from PyPI (scripts/pypi_venv.sh), for
# the Keras cross-checks; prints its python.
# usage: scripts/keras_venv.sh DIR
exec "$(dirname "$0")/pypi_venv.sh" "$1" keras,tensorflow,h5py,numpy tensorflow-cpu h5py
