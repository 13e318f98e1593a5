"""Reading a bundle's text: YAML or JSON with the line of every value, files a bundle
names inlined through the caller's reader, and validation errors as "file:line: path:
message". The schema itself is `core.bundle`; reading files is the edge's
(eucgate.policyfiles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eucgate_client import strictjson

from eucgate.core.bundle import Bundle, line_of, loc_text, validate_bundle
from eucgate.core.checks import CHECKS
from eucgate.core.screening import (
    parse_screening_list,
)
from eucgate.errors import BundleError

# Reads a file a bundle names (`{file: name}`) and returns its bytes; raises OSError.
# The edge supplies it (eucgate.policyfiles); the core itself never opens a file.
FileReader = Callable[[str], bytes]


def parse_bundle(text: str, source: str, *, files: FileReader | None = None) -> Bundle:
    """Validate bundle text; `source` names it in errors ("file:line: path: message").

    JSON text (such as `canonical()`) is read as JSON, anything else as YAML. Screening
    lists, trust anchors and CRLs given as `{file: name}` are read through `files`
    (without it, naming a file is an error). Raises BundleError
    for text that does not parse, duplicate keys, YAML anchors/aliases, a list file that
    cannot be read or is invalid, and any schema violation (an unknown check, invalid
    check parameters or PEM included).
    """
    data = _read_json(text)
    if data is None:
        data, lines = _read_yaml(text, source)
    else:
        lines = _json_lines(text)
    if not isinstance(data, dict):
        raise BundleError(f"{source}:1: the bundle must be a mapping at the top level")
    inline_list_files(data, source, files, lines)
    inline_pem_files(data, source, files, lines)
    return validate_bundle(data, source, lines, CHECKS)


def inline_list_files(
    data: dict[str, Any], source: str, files: FileReader | None, lines: _Lines | None = None
) -> None:
    """Replace each `{file: name}` of `data["screening_lists"]` by the list it names,
    read through `files`: a bundle written elsewhere then stands on its own.
    Raises BundleError for a file that cannot be read or is not a valid list."""
    lines = lines or {}
    lists = data.get("screening_lists")
    if not isinstance(lists, list):
        return
    for i, item in enumerate(lists):
        if not (isinstance(item, dict) and set(item) == {"file"}):
            continue
        where = f"{source}:{line_of(('screening_lists', i), lines)}: screening_lists[{i}]"
        if files is None:
            raise BundleError(f"{where}: list files can be named only in a bundle file")
        name = str(item["file"])
        try:
            text = files(name).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"{where}: cannot read {name}: {exc}") from None
        lists[i] = parse_screening_list(text, name).model_dump(mode="json")


def inline_pem_files(
    data: dict[str, Any], source: str, files: FileReader | None, lines: _Lines | None = None
) -> None:
    """Replace each `{file: name}` under `data["trust_anchors"][role]` and
    `data["crls"][role]` by the PEM text of the file it names, read through `files`
    (a DER certificate or CRL is turned into PEM): the digest then covers
    the certificates and CRLs themselves, and the signed bundle needs no other file.
    Raises BundleError naming the line for a file that cannot be read or holds no
    certificate (or CRL)."""
    lines = lines or {}
    for section, kind in (("trust_anchors", "certificate"), ("crls", "CRL")):
        roles = data.get(section)
        if not isinstance(roles, dict):
            continue
        for role, entries in roles.items():
            if not isinstance(entries, list):
                continue
            for i, item in enumerate(entries):
                if not (isinstance(item, dict) and set(item) == {"file"}):
                    continue
                loc = (section, str(role), i)
                where = f"{source}:{line_of(loc, lines)}: {loc_text(loc)}"
                if files is None:
                    raise BundleError(
                        f"{where}: PEM files can be named only in a bundle file", field=section
                    )
                name = str(item["file"])
                try:
                    raw = files(name)
                except OSError as exc:
                    raise BundleError(
                        f"{where}: cannot read {name}: {exc.strerror or exc}", field=section
                    ) from None
                try:
                    entries[i] = _pem_text(raw, kind)
                except ValueError as exc:
                    raise BundleError(f"{where}: {name}: {exc}", field=section) from None


def _pem_text(raw: bytes, kind: str) -> str:
    """PEM text of a PEM or DER file holding a certificate (or CRL); ValueError if not."""
    if b"-----BEGIN" in raw:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("not PEM text: it holds bytes that are not ASCII") from None
    try:
        if kind == "CRL":
            pem = x509.load_der_x509_crl(raw).public_bytes(serialization.Encoding.PEM)
        else:
            pem = x509.load_der_x509_certificate(raw).public_bytes(serialization.Encoding.PEM)
    except ValueError:
        raise ValueError(f"holds no PEM or DER {kind}") from None
    return pem.decode("ascii")


_Lines = dict[tuple[int | str, ...], int]


def _read_json(text: str) -> Any:
    """The document if `text` is a JSON object without duplicate keys, else None.

    JSON is not left to the YAML reader because YAML folds some characters JSON keeps
    (U+0085, U+2028 in strings), which would change the digest of a stored bundle.
    Anything refused here is read again as YAML, which reports the error with a line.
    """
    if not text.lstrip().startswith("{"):
        return None
    try:
        return strictjson.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_lines(text: str) -> _Lines:
    # Best effort: JSON that YAML also reads gets line numbers in its errors.
    try:
        return _read_yaml(text, "")[1]
    except BundleError:
        return {}


def _read_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    try:
        # The reader refuses control characters as it is built: before any mark exists.
        loader = _LineLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise BundleError(
            f"{source}:{line}: not valid YAML: the character U+{exc.character:04X} is not "
            "allowed in YAML text"
            if isinstance(exc.character, int)
            else f"{source}:{line}: not valid YAML: {exc.reason}"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise BundleError(f"{source}:1: the bundle is empty")
        lines: _Lines = {}
        _record_lines(node, (), lines, set(), source)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise BundleError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BundleError(f"{source}:1: not valid YAML: {exc}") from None
    except RecursionError:
        raise BundleError(f"{source}:1: the bundle is nested too deeply") from None
    finally:
        loader.dispose()


class _LineLoader(yaml.SafeLoader):
    """SafeLoader; `parse_bundle` walks its node tree to learn each path's line."""


def _record_lines(
    node: yaml.Node,
    path: tuple[int | str, ...],
    lines: _Lines,
    seen: set[int],
    source: str,
) -> None:
    # A node met twice is an alias: refused, so that a bundle is plain data and a
    # nested-alias "billion laughs" cannot blow up validation.
    if id(node) in seen:
        raise BundleError(
            f"{source}:{node.start_mark.line + 1}: {loc_text(path)}: "
            "YAML anchors and aliases are not allowed in a bundle"
        )
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = (*path, key)
            if key in keys:
                raise BundleError(
                    f"{source}:{key_node.start_mark.line + 1}: {loc_text(here)}: "
                    "the key appears twice"
                )
            keys.add(key)
            lines[here] = key_node.start_mark.line + 1
            _record_lines(value_node, here, lines, seen, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), lines, seen, source)
