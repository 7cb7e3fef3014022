"""resize.py with the Lanczos-3 kernel (6 taps, widened by 1/scale when
downsampling): the same algorithm and schedule, another kernel.
Tolerance: 1e-4 absolute (float32 sin() and sums; C and LLVM differ slightly).
"""
import sys

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common
from resize import (FULL, SMALL, build, make_input, output_size,  # noqa: F401
                    view_input, view_output)

RTOL, ATOL = 1e-5, 1e-4
PARAMS = {"interpolation": "lanczos", "scale": 0.625}


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
