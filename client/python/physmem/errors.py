# SPDX-License-Identifier: LGPL-2.1-or-later
"""Exceptions: one class per Varlink error of io.physmem.Manager, made from a table.

Every class carries the error's parameters twice: as attributes (``e.max``)
and as the dict ``e.parameters``. The table below must match the ``error``
lines of proto/io.physmem.Manager.varlink (a test checks it).
"""

INTERFACE = "io.physmem.Manager"

# Error name -> its parameters, in the order the IDL declares them.
MANAGER_ERRORS = {
    "NoSuchBuffer": ("id", "name"),
    "QuotaExceeded": ("limit", "max", "used", "requested"),
    "PermissionDenied": ("reason",),
    "SizeOutOfRange": ("size", "min", "max"),
    "NotSupported": ("feature", "backend"),
    "AllocationFailed": ("reason",),
    "NameInUse": ("name",),
    "AmbiguousName": ("name", "owners"),
    "NotPopulated": ("offset",),
    "NoSuchDevice": ("device",),
    "DeviceBusy": ("device", "reason"),
    "PoolUnavailable": ("pool", "reason", "size", "free", "largestFree"),
}

# The standard errors of org.varlink.service that the daemon may answer with.
SERVICE_ERRORS = {
    "InterfaceNotFound": ("interface",),
    "MethodNotFound": ("method",),
    "MethodNotImplemented": ("method",),
    "InvalidParameter": ("parameter",),
    "ExpectedMore": (),
}


class Error(Exception):
    """Base of every physmem exception."""

    parameters = {}


class ConnectError(Error):
    """No trusted daemon could be reached; errno says why (EPERM: refused)."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


class ProtocolError(Error):
    """The connection broke, timed out, or the daemon's reply was malformed.

    The connection is unusable afterwards."""


class AddressUnavailable(Error):
    """physical_address asked of a buffer whose addresses are hidden or not DMA-safe."""


class VarlinkError(Error):
    """A Varlink error reply; subclasses are named after the error."""

    varlink_name = None
    fields = ()

    def __init__(self, parameters=None, varlink_name=None):
        self.parameters = dict(parameters or {})
        if varlink_name is not None:
            self.varlink_name = varlink_name
        for f in self.fields:
            setattr(self, f, self.parameters.get(f))
        shown = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        super().__init__(f"{self.varlink_name}({shown})")


def _make(name, fields, interface):
    doc = f"The Varlink error {interface}.{name}({', '.join(fields)})."
    return type(name, (VarlinkError,), {"__doc__": doc, "varlink_name": f"{interface}.{name}",
                                        "fields": fields, "__module__": __name__})


# Full Varlink error name -> class.
BY_NAME = {}
for _n, _f in MANAGER_ERRORS.items():
    globals()[_n] = BY_NAME[f"{INTERFACE}.{_n}"] = _make(_n, _f, INTERFACE)
for _n, _f in SERVICE_ERRORS.items():
    globals()[_n] = BY_NAME[f"org.varlink.service.{_n}"] = _make(_n, _f, "org.varlink.service")
# org.varlink.service.PermissionDenied means the same as ours.
BY_NAME["org.varlink.service.PermissionDenied"] = globals()["PermissionDenied"]
del _n, _f

__all__ = ["Error", "ConnectError", "ProtocolError", "AddressUnavailable", "VarlinkError", "from_reply"] + \
    list(MANAGER_ERRORS) + list(SERVICE_ERRORS)


def from_reply(name, parameters):
    """The exception for a Varlink error reply (VarlinkError for names not known here)."""
    cls = BY_NAME.get(name)
    if cls is None:
        return VarlinkError(parameters, varlink_name=name)
    return cls(parameters)
