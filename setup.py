"""Build the Cython extensions of seqclf; all metadata lives in pyproject.toml.

OpenMP is used when a tiny OpenMP program compiles, links *and runs* with the
compiler at hand; otherwise the extensions are built serial, with a warning.
Set ``SEQCLF_CYTHON_DEBUG=1`` to build with bounds checks,
``SEQCLF_NO_OPENMP=1`` to force a serial build, and ``SEQCLF_CHUNK_SIZE``
to measure another number of sequences per chunk than the default 16.
``SEQCLF_SANITIZE=address`` (gcc or clang) compiles and links every extension
with AddressSanitizer (``-fsanitize=address -fno-omit-frame-pointer -g -O1``);
such a build only loads into a Python started with the ASan runtime preloaded
(``LD_PRELOAD``), see ``.ci/memcheck``, which builds one in a temporary copy
of the tree, with ``SEQCLF_CYTHON_DEBUG=1`` too, and runs the kernel tests
marked ``memcheck`` under it.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = ["_openmp_helpers", "_kernels", "_kernels_testing", "_embedding",
              "_vector", "_head", "_updates", "_plan"]
# The training plan and its parts: built without floating-point contraction
# (the optimizers' updates give NumPy's bits at every SIMD level only
# unfused: seqclf/_update.h); errno is never read.
UNFUSED = ("_vector", "_head", "_updates", "_plan")

DEBUG = os.environ.get("SEQCLF_CYTHON_DEBUG", "0") not in ("", "0")
# Sequences per thread work unit; only for measuring alternatives (see
# seqclf/_kernels.pyx). Results are bit-identical across thread counts for
# any fixed value.
CHUNK_SIZE = os.environ.get("SEQCLF_CHUNK_SIZE", "")
# Memory-error checking build; only AddressSanitizer is supported.
SANITIZE = os.environ.get("SEQCLF_SANITIZE", "")
if SANITIZE not in ("", "address"):
    raise SystemExit(f"SEQCLF_SANITIZE must be 'address' or empty, got {SANITIZE!r}")
SANITIZE_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"]

# Directives are set once here for every extension.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

OPENMP_PROBE = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel num_threads(2) reduction(+:n)
        n += 1;
        printf("%d", n);
        return n == 2 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) that enable OpenMP, or None."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _probe_openmp(compiler, flags):
    """Compile, link and run a small OpenMP program with ``flags``."""
    compile_args, link_args = flags
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objs, exe, extra_postargs=link_args)
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        except Exception as exc:  # compile, link or run failure
            return False, str(exc)
        return out.returncode == 0 and out.stdout.strip() == "2", out.stdout


def _accepts_flags(compiler, flags):
    """Whether the compiler compiles an empty function with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "flags.c")
        with open(src, "w") as f:
            f.write("int seqclf_probe(void) { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp, extra_postargs=flags + ["-Werror"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        compiler_type = self.compiler.compiler_type
        base = []
        if compiler_type != "msvc":
            # -fno-trapping-math lets gcc vectorise the branch-free gate math;
            # unlike -ffast-math it keeps IEEE NaN/inf semantics.
            base = ["-O3", "-fno-trapping-math", "-Wno-unused-function"]
            # The gate loops read and write many arrays: let gcc check more
            # pointer pairs for overlap at run time instead of not vectorising.
            alias = ["--param", "vect-max-version-for-alias-checks=64"]
            if _accepts_flags(self.compiler, alias):
                base += alias
        flags = None
        if os.environ.get("SEQCLF_NO_OPENMP", "0") in ("", "0"):
            flags = _openmp_flags(self.compiler)
            ok, detail = _probe_openmp(self.compiler, flags)
            if not ok:
                warnings.warn(
                    "OpenMP is not available with this compiler "
                    f"({detail!s:.200}); seqclf is built without multithreading. "
                    "On macOS install libomp; with gcc/clang check -fopenmp works.",
                    stacklevel=1,
                )
                flags = None
        else:
            print("SEQCLF_NO_OPENMP is set: building seqclf without OpenMP")
        sanitize = []
        if SANITIZE:
            if compiler_type == "msvc":
                raise SystemExit("SEQCLF_SANITIZE is supported with gcc and clang only")
            # After base: the last -O wins.
            sanitize = SANITIZE_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = base + (flags[0] if flags else []) + sanitize
            if (ext.name.split(".")[-1] in UNFUSED
                    and compiler_type != "msvc"):
                ext.extra_compile_args += ["-ffp-contract=off", "-fno-math-errno"]
            ext.extra_link_args = (flags[1] if flags else []) + sanitize
        super().build_extensions()


extensions = [
    Extension(
        f"seqclf.{name}",
        [f"seqclf/{name}.pyx"],
        # No extension cimports NumPy: the kernels take typed memoryviews,
        # so neither NumPy's headers nor its API macro are needed to build.
        include_dirs=["seqclf"],
        define_macros=[("SEQCLF_CHUNK_SIZE", CHUNK_SIZE)] if CHUNK_SIZE else [],
    )
    for name in EXTENSIONS
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES),
    cmdclass={"build_ext": BuildExt},
)
