"""Errors raised by reprolib. Every message names the offending file, tensor or parameter."""


class ReprolibError(Exception):
    """Base class of all reprolib errors."""


class CheckpointError(ReprolibError):
    """A checkpoint (folder or safetensors file) is missing, corrupt, pickled or inconsistent."""


class TensorMismatchError(ReprolibError):
    """Two checkpoints disagree on a tensor's presence, shape or dtype, or a tensor holds NaN/Inf."""


class ConfigError(ReprolibError):
    """A merge configuration is unreadable, names an unknown method or has an out-of-range parameter."""


class OutputExistsError(ReprolibError):
    """The output path already exists; reprolib never overwrites a result."""


class EvalError(ReprolibError):
    """An evaluation cannot run or gave no usable score: a tokenizer without a chat template, an
    empty evaluation set, an unknown metric or a non-finite score."""


class OutputPathError(ReprolibError):
    """The output path cannot be created or written: it lies under a file, in a read-only folder,
    has a name too long for the file system, or the disk filled up while writing."""
