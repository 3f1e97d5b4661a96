"""The one compiled part of bnnlib: the binary inference kernel (bnnlib/_binary.c).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
compiled (no C compiler), the install goes on and bnnlib.binary falls back to the int8/float32
torch engine, which gives the same predictions. Its AVX512 and AVX2 functions are compiled with
per-function target attributes and chosen at run time by CPU feature, so no -march flag is used:
the built module runs on any x86-64 processor.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("bnnlib._binary", sources=["bnnlib/_binary.c"], optional=True,
                             extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-unused-function"],
                             extra_link_args=["-pthread"])])
