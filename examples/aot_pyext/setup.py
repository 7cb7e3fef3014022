"""Build: HALO_BLUR_DIR=<dir from `halo compile halo.apps.blur:blur --name blur -o DIR`>
python setup.py build_ext --inplace"""
import os
import re

from setuptools import Extension, setup

d = os.path.abspath(os.environ.get("HALO_BLUR_DIR", "build/blur"))
pc = open(os.path.join(d, "blur.pc")).read()
private = re.search(r"^Libs\.private:(.*)$", pc, re.M)
extra = private.group(1).split() if private else ["-lm"]

setup(
    name="blurext",
    version="0.1",
    ext_modules=[Extension(
        "blurext", ["blurext.c"],
        include_dirs=[d],
        # link the static library: the extension is then self-contained
        extra_objects=[os.path.join(d, "libblur.a")],
        extra_link_args=extra,
    )],
)
