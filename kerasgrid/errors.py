"""The one family of errors kerasgrid raises on purpose, and the states a trial ends in."""

from enum import Enum


class KerasgridError(Exception):
    """Base of every error kerasgrid raises on purpose."""


class ConfigError(KerasgridError):
    """The sweep's configuration is wrong; the message names the file, the key and the fix."""


class DataError(KerasgridError):
    """A data callable returned something kerasgrid cannot train on."""


class ModelError(KerasgridError):
    """A model callable returned something kerasgrid cannot train."""


class NoSuccessfulTrial(KerasgridError):
    """Every trial of the sweep failed or diverged, so there is no winner."""


class NotReproducible(KerasgridError):
    """Training a trial again did not reproduce the objective recorded for it."""


class Status(str, Enum):
    """How a trial ended. Ranked in this order: ok trials first, failed ones last."""

    OK = "ok"
    DIVERGED = "diverged"
    FAILED = "failed"


class Direction(str, Enum):
    """Whether a smaller or a larger objective is better."""

    MIN = "min"
    MAX = "max"
