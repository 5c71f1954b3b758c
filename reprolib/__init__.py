"""reprolib: merge kernels and evaluation wrappers for the task-arithmetic reproducibility book."""

from reprolib.errors import (
    CheckpointError,
    ConfigError,
    OutputExistsError,
    OutputPathError,
    ReprolibError,
    TensorMismatchError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "OutputExistsError",
    "OutputPathError",
    "ReprolibError",
    "TensorMismatchError",
    "__version__",
]
