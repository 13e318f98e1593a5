"""Policy bundle v0: schema, errors that name line and path, a stable digest."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from eucgate.core.bundle import Bundle, validate_bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.checks import CHECKS
from eucgate.core.decision import RuleOutcome
from eucgate.core.model import EndUseCategory, Party, Registration
from eucgate.errors import BundleError
from eucgate.policyfiles import files_in, load_bundle
from pydantic import ValidationError

from tests.conftest import Pki
from tests.factories import SAMPLE_BUNDLE_PATH, sample_bundle

SAMPLE_TEXT = SAMPLE_BUNDLE_PATH.read_text(encoding="utf-8")


SAMPLE_DIR = SAMPLE_BUNDLE_PATH.parent


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _refused(text: str, source: str = "policy.yaml") -> BundleError:
    with pytest.raises(BundleError) as info:
        parse_bundle(text, source, files=files_in(SAMPLE_DIR))
    return info.value


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


# --- the sample bundle ------------------------------------------------------------------


def test_sample_bundle_content() -> None:
    bundle = sample_bundle()
    assert bundle.version == 1
    assert bundle.parameters.max_validity_days == 183
    assert bundle.barred_destinations == ("US",)
    assert set(bundle.prohibited_end_uses) == {
        EndUseCategory.MILITARY,
        EndUseCategory.DEFENCE,
        EndUseCategory.WEAPONS,
        EndUseCategory.WMD,
        EndUseCategory.NUCLEAR_EXPLOSIVE,
        EndUseCategory.MISSILE,
        EndUseCategory.UAV,
    }
    elements = {e for item in bundle.controlled_items for e in item.elements}
    assert elements == {"Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y"}
    assert {c.hs_code for c in bundle.controlled_items} == {
        "8505.11",
        "2805.30",
        "2846.10",
        "2846.90",
    }
    assert {c.control_code for c in bundle.controlled_items} <= {"1C902", "1C903", "1C904"}
    assert len(bundle.licensed_importers) == 4
    assert bundle.trust_anchors == {}
    assert bundle.anchors == {}


def test_jay_ushin_registrations_are_the_fixtures() -> None:
    (jay,) = [
        li for li in sample_bundle().licensed_importers if li.legal_name == "Jay-Ushin Limited"
    ]
    assert {(r.scheme, r.value) for r in jay.registrations} == {
        ("IEC", "0588012345"),
        ("GSTIN", "06AAACJ1234F1Z5"),
    }


def test_the_licensed_importer_is_the_first_sharing_a_registration() -> None:
    bundle = sample_bundle()
    data = json.loads(bundle.canonical())
    first, second = data["licensed_importers"][:2]
    shared = second["registrations"][0]
    first["registrations"] = [*first["registrations"], shared]
    twice = validate_bundle(data, "<test>", {}, CHECKS)
    importers = twice.licensed_importers

    def party(*registrations: dict[str, str]) -> Party:
        regs = tuple(Registration(**r) for r in registrations)
        return Party(legal_name="Anyone", country_code="IN", registrations=regs)

    # Listed under both: the first importer wins, whichever registration comes first.
    assert twice.licensed_importer_for(party(shared)) == importers[0]
    own = second["registrations"][-1]
    assert twice.licensed_importer_for(party(own, shared)) == importers[0]
    assert twice.licensed_importer_for(party(own)) == importers[1]
    assert twice.licensed_importer_for(party({"scheme": "IEC", "value": "0000000000"})) is None
    assert twice.licensed_importer_for(party()) is None


def test_sample_rules_have_stable_ids_and_cover_every_check() -> None:
    rules = sample_bundle().rules
    assert [r.id for r in rules] == [
        "SIG-001",
        "SIG-002",
        "SIG-003",
        "SIG-004",
        "SIG-005",
        "SIG-006",
        "DOC-001",
        "DOC-002",
        "DOC-003",
        "DOC-004",
        "DOC-005",
        "DOC-006",
        "CMT-001",
        "CMT-002",
        "EUS-001",
        "EUS-002",
        "EUS-003",
        "DST-001",
        "DST-002",
        "DST-003",
        "DST-004",
        "PTY-001",
        "PTY-002",
        "PTY-003",
        "LIC-001",
        "LIC-002",
        "ITM-001",
        "ITM-003",
        "ITM-004",
        "ITM-002",
        "QTY-002",
        "QTY-001",
        "RF-001",
        "RF-002",
        "RF-003",
        "RF-004",
        "RF-005",
    ]
    assert {r.check for r in rules} == set(CHECKS)
    refer = {"SIG-004", "SIG-006", "EUS-002", "EUS-003", "DST-002", "DST-003", "ITM-001", "ITM-002"}
    refer |= {"DST-004", "ITM-004"}
    refer |= {f"RF-00{n}" for n in range(1, 6)} | {"PTY-003", "QTY-002"}
    assert all(r.outcome is RuleOutcome.REJECT for r in rules if r.id not in refer)
    assert {r.id for r in rules if r.outcome is RuleOutcome.REFER} == refer


def test_the_schema_takes_its_check_registry_from_the_caller() -> None:
    # core.bundle never imports the registry: validating without one is refused, and a
    # registry without the sample's checks refuses each rule by name.
    data = json.loads(sample_bundle().canonical())
    with pytest.raises(ValidationError, match="no check registry"):
        Bundle.model_validate(data)
    with pytest.raises(BundleError, match=r"rules\[0\]\.check: unknown check"):
        validate_bundle(data, "<test>", {}, {})
    assert validate_bundle(data, "<test>", {}, CHECKS).digest == sample_bundle().digest


# --- digest and canonical form ----------------------------------------------------------


def test_digest_is_sha256_of_the_canonical_form() -> None:
    bundle = sample_bundle()
    assert bundle.digest == hashlib.sha256(bundle.canonical()).hexdigest()
    assert json.loads(bundle.canonical())["name"] == "rare-earths-cn-in"


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("flow", [True, False])
def test_digest_is_stable_across_yaml_formatting(flow: bool) -> None:
    data = yaml.safe_load(SAMPLE_TEXT)
    text = "# reformatted\n" + yaml.safe_dump(
        _reversed_keys(data), sort_keys=False, default_flow_style=flow, width=60
    )
    assert text != SAMPLE_TEXT
    assert (
        parse_bundle(text, "reformatted.yaml", files=files_in(SAMPLE_DIR)).digest
        == sample_bundle().digest
    )


def test_digest_ignores_comments_and_covers_content() -> None:
    commented = SAMPLE_TEXT.replace("version: 0", "version: 0   # schema\n# more\n")
    assert (
        parse_bundle(commented, "c.yaml", files=files_in(SAMPLE_DIR)).digest
        == sample_bundle().digest
    )
    changed = SAMPLE_TEXT.replace("max_validity_days: 183", "max_validity_days: 182")
    assert (
        parse_bundle(changed, "c.yaml", files=files_in(SAMPLE_DIR)).digest != sample_bundle().digest
    )


def test_default_params_are_part_of_the_digest() -> None:
    # CMT-001 lists all four undertakings, which is also the default.
    start = SAMPLE_TEXT.index("    params:\n      required:")
    end = SAMPLE_TEXT.index("    message:", start)
    without = SAMPLE_TEXT[:start] + SAMPLE_TEXT[end:]
    assert (
        parse_bundle(without, "d.yaml", files=files_in(SAMPLE_DIR)).digest == sample_bundle().digest
    )


def test_canonical_form_parses_back_to_the_same_digest(pki: Pki) -> None:
    for bundle in (sample_bundle(), sample_bundle(pki)):
        again = parse_bundle(bundle.canonical().decode("utf-8"), "stored")
        assert again.digest == bundle.digest
        assert again == bundle


@pytest.mark.parametrize(
    "description",
    ["Terres rares — société, 稀土", 'tab\tquote"back\\slash', "line\u2028sep\x85nel\u00a0"],
)
def test_canonical_round_trip_with_unusual_text(description: str) -> None:
    data = yaml.safe_load(SAMPLE_TEXT)
    data["description"] = description
    bundle = parse_bundle(
        json.dumps(data, default=str, ensure_ascii=False), "u.json", files=files_in(SAMPLE_DIR)
    )
    assert bundle.description == description
    again = parse_bundle(bundle.canonical().decode(), "stored")
    assert again.description == description
    assert again.digest == bundle.digest


def test_with_trust_anchors_installs_parsed_anchors_and_changes_the_digest(pki: Pki) -> None:
    plain = sample_bundle()
    trusting = plain.with_trust_anchors(
        {"consignee": [_pem(pki.consignee_root)], "end_user": [_pem(pki.root)]}
    )
    assert trusting.digest != plain.digest
    assert list(trusting.anchors) == ["end_user", "consignee"]  # fixed role order
    assert list(trusting.anchors["end_user"]) == [pki.root]
    assert list(trusting.anchors["consignee"]) == [pki.consignee_root]
    assert plain.anchors == {}


def test_with_trust_anchors_refuses_bad_input(pki: Pki) -> None:
    with pytest.raises(BundleError, match="trust_anchors"):
        sample_bundle().with_trust_anchors({"end_user": ["not a pem"]})
    with pytest.raises(BundleError, match="trust_anchors"):
        sample_bundle().with_trust_anchors({"auditor": [_pem(pki.root)]})


def _ed25519_root() -> x509.Certificate:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed root")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )


def test_ed25519_anchor_is_refused() -> None:
    with pytest.raises(BundleError, match="not an ECDSA or RSA key"):
        sample_bundle().with_trust_anchors({"end_user": [_pem(_ed25519_root())]})


# --- errors name source, line and path -------------------------------------------------


def test_unknown_check_names_line_and_path() -> None:
    text = SAMPLE_TEXT.replace("check: end_use_permitted", "check: end_use_permited")
    err = _refused(text)
    line = _line_of(text, "end_use_permited")
    assert str(err).startswith(f"policy.yaml:{line}: rules[14].check: unknown check")
    assert err.field == "rules[14].check"
    assert err.reason == "BUNDLE_INVALID"


def test_invalid_check_params_name_the_rule() -> None:
    text = SAMPLE_TEXT.replace("        - no_military_end_user\n", "        - no_drones\n")
    err = _refused(text)
    assert "rules[12].params" in str(err)
    assert "no_drones" in str(err) or "required" in str(err)
    cmt_params = text.index("    params:", text.index("check: undertakings_given"))
    assert str(err).startswith(f"policy.yaml:{text[:cmt_params].count(chr(10)) + 1}:")


def test_params_for_a_check_without_params_are_refused() -> None:
    text = SAMPLE_TEXT.replace(
        "    check: signatures_verified\n", "    check: signatures_verified\n    params: {x: 1}\n"
    )
    err = _refused(text)
    assert f"policy.yaml:{_line_of(text, 'params: {x: 1}')}: rules[0].params:" in str(err)


def test_schema_errors_name_nested_lines() -> None:
    text = SAMPLE_TEXT.replace("valid_until: 2027-10-19", "valid_until: 2025-01-01", 1)
    err = _refused(text)
    line = _line_of(text, "valid_until: 2025-01-01")
    assert f"policy.yaml:{line}: licensed_importers[0].valid_until: must not be before" in str(err)


def test_every_error_is_reported() -> None:
    text = SAMPLE_TEXT.replace("max_validity_days: 183", "max_validity_days: -1").replace(
        "barred_destinations: [US]", "barred_destinations: [XX]"
    )
    message = str(_refused(text))
    assert "parameters.max_validity_days" in message
    assert "barred_destinations[0]" in message
    assert len(message.splitlines()) == 2


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("version: 1", "version: 0", "version"),
        ("version: 1", "version: false", "version"),
        ("version: 1", "version: 1\nsurprise: 1", "surprise"),
        ('- hs_code: "8505.11"', "- hs_code: 8505.11", "controlled_items[0].hs_code"),
        ("forms: [MAGNET]", "forms: [UNSPECIFIED]", "controlled_items[0].forms"),
        ("control_code: 1C904", "control_code: magnets", "controlled_items[0].control_code"),
        ("elements: [Dy, Tb]", "elements: [Dy, Xx]", "controlled_items[0].elements[1]"),
        ("  - UAV", "  - SPACE", "prohibited_end_uses[6]"),
        ("  - UAV", "  - UNSPECIFIED", "prohibited_end_uses"),
        ("valid_from: 2025-10-20", "valid_from: 1760918400", "licensed_importers[0].valid_from"),
        ("- id: SIG-001", "- id: SIG-1", "rules[0].id"),
        ("- id: SIG-002", "- id: DOC-009", "rules[1].family"),
        ("- id: SIG-002", "- id: SIG-001", "rules"),
        ("family: SIG", "family: ENG", "rules[0].family"),
        ("outcome: REFER", "outcome: WARN", "rules[3].outcome"),
        ('message: "$field: the certificate is not valid now', 'message: "$who', "rules[6]"),
        ("trust_anchors: {}", "trust_anchors: {end_user: [nope]}", "trust_anchors.end_user"),
        ("trust_anchors: {}", "trust_anchors: {auditor: []}", "trust_anchors.auditor"),
    ],
)
def test_schema_violations(old: str, new: str, path: str) -> None:
    assert old in SAMPLE_TEXT
    text = SAMPLE_TEXT.replace(old, new, 1)
    err = _refused(text)
    assert f": {path}" in str(err), str(err)
    assert str(err).startswith("policy.yaml:")


def test_yaml_syntax_error_names_the_line() -> None:
    text = SAMPLE_TEXT.replace("barred_destinations: [US]", "barred_destinations: [US")
    err = _refused(text)
    assert "not valid YAML" in str(err)
    assert str(err).startswith("policy.yaml:")


def test_duplicate_keys_are_refused() -> None:
    text = SAMPLE_TEXT + "barred_destinations: [CN]\n"
    err = _refused(text)
    assert str(err) == (
        f"policy.yaml:{len(text.splitlines())}: barred_destinations: the key appears twice"
    )


def test_aliases_are_refused() -> None:
    text = SAMPLE_TEXT.replace("barred_destinations: [US]", "barred_destinations: &b [US]")
    text += "x_alias: *b\n"
    assert "aliases are not allowed" in str(_refused(text))


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a list\n", "just text"])
def test_bundle_must_be_a_mapping(text: str) -> None:
    assert str(_refused(text)).startswith("policy.yaml:1:")


def test_python_tags_are_refused() -> None:
    text = SAMPLE_TEXT.replace("name: rare-earths-cn-in", "name: !!python/name:os.system ''")
    assert "not valid YAML" in str(_refused(text))


def test_load_bundle_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(SAMPLE_TEXT, encoding="utf-8")
    shutil.copytree(SAMPLE_DIR / "lists", tmp_path / "lists")
    assert load_bundle(path).digest == sample_bundle().digest
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(BundleError, match="not UTF-8"):
        load_bundle(path)
    with pytest.raises(OSError):
        load_bundle(tmp_path / "missing.yaml")


def test_json_bundles_are_accepted() -> None:
    data = json.loads(sample_bundle().canonical())
    text = json.dumps(data, indent=2)
    assert parse_bundle(text, "b.json", files=files_in(SAMPLE_DIR)).digest == sample_bundle().digest
    data["parameters"]["max_validity_days"] = "183"
    err = _refused(json.dumps(data, indent=2), "b.json")
    line = _line_of(json.dumps(data, indent=2), '"max_validity_days"')
    assert str(err).startswith(f"b.json:{line}: parameters.max_validity_days:")


def test_bundle_is_frozen() -> None:
    bundle = sample_bundle()
    with pytest.raises(ValueError, match="frozen"):
        bundle.name = "other"
    assert isinstance(bundle, Bundle)
