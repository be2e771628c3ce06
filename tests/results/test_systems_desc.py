"""The systems json: values from the probe, notes files, what still blocks a submission, and MLCommons'
``mlperf-sysinfo validate --profile inference`` on what mlrepro writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sysinfo_support import sysinfo_validate, validate_problems
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.results.check.systems import system_problems
from mlrepro.results.rounds import load_round
from mlrepro.results.system_notes import SystemNotesError, load_system_notes, parse_system_notes, system_overrides
from mlrepro.results.systems import (
    SystemFinding,
    build_system_desc,
    derive_system_id,
    desc_json,
    known_fields,
    submission_blockers,
)

ROUND = load_round()
REQUIRED_FIELDS = tuple(f.name for f in ROUND.systems.fields if f.required)
MEANINGFUL_FIELDS = frozenset(f.name for f in ROUND.systems.fields if f.meaningful)


def system_desc_problems(desc: dict, *, division: str, submitter: str) -> list:
    """What the checker's rules (the round's field table) find in ``desc``."""
    return system_problems(desc, ROUND, division=division, submitter=submitter)

NOTES = {"submitter_contact": "ops@example.com", "cooling": "air-cooled",
         "host_networking_topology": "single 25 GbE switch", "host_memory_configuration": "16x 32 GiB DDR5-4800",
         "hw_notes": "BIOS 2.1, SMT on", "sw_notes": "performance governor"}

# a schema-2 system.json of a two-socket x86 server in a Docker container (what the harness writes)
SYSTEM = {
    "schema": 2, "machine": "x86_64", "kernel": "6.8.0-45-generic", "os": "Debian GNU/Linux 12 (bookworm)",
    "python": "3.11.2",
    "cpu": {"model": "Intel(R) Xeon(R) Platinum 8480+", "vendor": "GenuineIntel", "sockets": 2, "cores": 112,
            "threads": 224, "max_mhz": 3800.0, "hypervisor": False, "emulated_on": None,
            "caches": [{"name": "L1d", "size_bytes": 5505024, "instances": 112},
                       {"name": "L3", "size_bytes": 220200960, "instances": 2}]},
    "numa_nodes": 2, "memory_total_bytes": 527765626880, "memory_dimms": [],
    "dmi": {"vendor": "Dell Inc.", "product": "PowerEdge R760"},
    "disks": [{"name": "nvme0n1", "size_bytes": 3840755982336, "kind": "NVMe SSD", "model": None}],
    "nics": [], "rdma": [], "accelerators": [], "accelerator_probe": None, "accelerator_interconnect": None,
    "cuda": None, "packages": {"numpy": "2.2.1", "onnxruntime": "1.20.1", "torch": None, "loadgen": "6.0.17"},
    "container": {"in_container": True, "kind": "docker"},
    "execution": {"target": "docker", "source": "launcher", "node_name": None, "cpus_allowed": 2,
                  "limits": {"cpus": 2.0, "memory_bytes": 2 * 2**30}},
    "host": {"os": "Ubuntu 22.04.4 LTS",
             "nics": [{"name": "eno1", "driver": "ice", "speed_mbps": 25000, "type": "Ethernet"},
                      {"name": "eno2", "driver": "ice", "speed_mbps": 25000, "type": "Ethernet"}],
             "memory_dimms": [{"size_bytes": 32 * 2**30, "type": "DDR5", "speed_mts": 4800,
                               "manufacturer": "Samsung"}] * 16},
}


def _desc(**kw) -> dict[str, str]:
    return build_system_desc(SYSTEM, division="closed", submitter="Acme", backend="onnxruntime", **kw)


def test_every_field_from_the_probe() -> None:
    desc = _desc()
    assert set(REQUIRED_FIELDS) <= set(desc) and all(isinstance(v, str) for v in desc.values())
    expected = {
        "system_name": "Dell Inc. PowerEdge R760 (Intel(R) Xeon(R) Platinum 8480+, CPU only)",
        "system_size": "2x Intel(R) Xeon(R) Platinum 8480+",
        "number_of_nodes": "1", "host_processors_per_node": "2", "host_processor_core_count": "112",
        "host_processor_vcpu_count": "224", "host_processor_frequency": "3.80 GHz",
        "host_processor_caches": "L1d: 5.25 MiB (112 instances); L3: 210 MiB (2 instances)",
        "host_processor_interconnect": "UPI (2 NUMA nodes)",
        # the container cannot read the DIMM table nor see the NICs: the host's probe says
        "host_memory_capacity": "512 GiB", "host_memory_configuration": "16x 32 GiB DDR5-4800 (Samsung)",
        "host_networking": "Ethernet (25 Gb/s, ice)", "host_network_card_count": "2x Ethernet (25 Gb/s, ice)",
        "host_storage_type": "NVMe SSD", "host_storage_capacity": "3.5 TiB NVMe SSD",
        "accelerators_per_node": "0", "accelerator_model_name": "N/A",
        "framework": "ONNX Runtime 1.20.1",
        "operating_system": "Debian GNU/Linux 12 (bookworm) (container) on Ubuntu 22.04.4 LTS, kernel 6.8.0-45-generic",
        "other_software_stack": "Python 3.11.2, mlcommons-loadgen 6.0.17, numpy 2.2.1, onnxruntime 1.20.1; "
                                "run in a Docker container limited to 2 CPUs, 2 GiB",
        "hw_notes": "x86_64", "cooling": "N/A", "host_networking_topology": "N/A", "submitter_contact": "",
        "status": "available", "system_type": "datacenter", "division": "closed", "submitter": "Acme",
    }
    assert {k: desc[k] for k in expected} == expected
    assert "is_network" not in desc
    assert system_desc_problems(desc, division="closed", submitter="Acme") == []   # the official checker's rules


def test_a_native_run_does_not_claim_a_container() -> None:
    native = {**SYSTEM, "execution": {"target": "native", "source": "launcher", "limits": {"cpus": None}},
              "host": None}
    desc = build_system_desc(native, division="open", submitter="Acme", backend="onnxruntime")
    assert desc["other_software_stack"].endswith("; run natively (no container)")
    assert "container" not in desc["operating_system"] and "docker" not in desc["other_software_stack"].lower()
    pod = {**SYSTEM, "execution": {"target": "kubernetes", "source": "detected", "limits": {}}, "host": None}
    assert build_system_desc(pod, division="open", submitter="Acme")["other_software_stack"].endswith(
        "; run in a Kubernetes pod")
    # what a pod cannot see (its own network namespace, no DIMM table, no host probe) is left to the notes
    desc = build_system_desc(pod, division="open", submitter="Acme")
    assert desc["host_networking"] == desc["host_network_card_count"] == desc["host_memory_configuration"] == "N/A"


def test_schema_1_system_json_still_builds() -> None:
    old = {"machine": "x86_64", "cpu": {"model": "AMD EPYC 9654", "sockets": 1, "cores": 96, "threads": 192},
           "memory_total_bytes": 2**39, "os": "Ubuntu 24.04", "kernel": "6.8", "python": "3.11.9",
           "accelerators": [{"name": "NVIDIA H200", "memory_total": "143771 MiB", "driver_version": "560.35.03"}],
           "packages": {"onnxruntime": "1.22.0"}, "container": {"in_container": True, "kind": "docker"}}
    desc = build_system_desc(old, division="open", submitter="Acme", backend="onnxruntime")
    assert desc["accelerator_memory_capacity"] == "141 GiB" and desc["accelerators_per_node"] == "1"
    assert desc["other_software_stack"].endswith("NVIDIA driver 560.35.03; run in a Docker container")
    assert system_desc_problems(desc, division="open", submitter="Acme") == []


def test_overrides_win_and_the_id_ignores_the_contact() -> None:
    desc = _desc(overrides=NOTES)
    assert {k: desc[k] for k in NOTES} == NOTES
    assert derive_system_id(desc) == derive_system_id({**desc, "submitter_contact": "other@example.com"})
    assert derive_system_id(desc) != derive_system_id({**desc, "cooling": "liquid"})
    assert desc_json(desc).endswith(b"\n") and json.loads(desc_json(desc)) == desc


def test_blockers_name_each_field() -> None:
    findings = submission_blockers(_desc(), division="closed")
    errors = {f.field for f in findings if f.severity == "error"}
    assert errors == {"submitter_contact", "cooling", "host_networking_topology"}
    assert all(isinstance(f, SystemFinding) and str(f).startswith(f.field + ": ") for f in findings)
    assert submission_blockers(_desc(overrides=NOTES), division="closed") == []
    # CPU-only: "N/A" in the accelerator fields is the convention, not a blocker
    assert not [f for f in findings if f.field.startswith("accelerator")]


@pytest.mark.parametrize(("change", "field", "severity"), [
    ({"cooling": "TBD"}, "cooling", "error"),
    ({"host_networking_topology": "-"}, "host_networking_topology", "error"),
    ({"host_storage_type": ""}, "host_storage_type", "error"),
    ({"framework": "Not detected: x"}, "framework", "error"),
    ({"hw_notes": "CHANGEME"}, "hw_notes", "error"),
    ({"system_type_detail": "Insert system type detail here"}, "system_type_detail", "error"),
    ({"submitter_contact": "ops"}, "submitter_contact", "warning"),
    ({"sw_notes": ""}, "sw_notes", "warning"),
    ({"status": "released"}, "status", "error"),
    ({"system_type": "server"}, "system_type", "error"),
    ({"number_of_nodes": "0"}, "number_of_nodes", "error"),
    ({"division": "open"}, "division", "error"),
    ({"accelerators_per_node": "2"}, "accelerator_model_name", "error"),   # GPUs claimed: N/A no longer fine
    ({"is_network": "true"}, "is_network", "error"),
])
def test_each_blocker(change: dict[str, str], field: str, severity: str) -> None:
    desc = {**_desc(overrides=NOTES), **change}
    found = [f for f in submission_blockers(desc, division="closed") if f.field == field]
    assert found and found[0].severity == severity, submission_blockers(desc, division="closed")


def test_blockers_missing_fields_and_rounds() -> None:
    desc = _desc(overrides=NOTES)
    del desc["cooling"]
    assert [str(f) for f in submission_blockers(desc, division="closed")] == [
        "cooling: missing (the submission checker requires it)"]
    network = build_system_desc(SYSTEM, division="network", submitter="Acme", overrides=NOTES)
    fields = {f.field for f in submission_blockers(network, division="network")}
    assert "network_type" in fields and "is_network" not in fields
    assert submission_blockers(_desc(overrides=NOTES), division="closed", version="v6.0") == []
    from mlrepro.results.rounds import UnknownRoundError

    with pytest.raises(UnknownRoundError, match="v4.1"):
        submission_blockers(desc, division="closed", version="v4.1")
    assert [f.severity for f in submission_blockers({**_desc(overrides=NOTES), "host_processor_core_count": 112},
                                                    division="closed")] == ["warning"]


# --- notes files -----------------------------------------------------------------------------------------

def test_notes_file_mlrepro_layout(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text("cooling: air\nhw_notes: BIOS 2.1\nhost_processor_core_count: 112\nsubmitter: Acme\n")
    assert load_system_notes(path, submitter="acme") == {"cooling": "air", "hw_notes": "BIOS 2.1",
                                                         "host_processor_core_count": "112"}
    with pytest.raises(SystemNotesError, match=r"notes.yaml: submitter: 'Acme' differs from --submitter 'Other'"):
        load_system_notes(path, submitter="Other")


def test_notes_file_mlperf_sysinfo_config(tmp_path: Path) -> None:
    path = tmp_path / "sysinfo.yaml"
    path.write_text("""profile: inference
output: {dir: results/sysinfo}
system: {name: 8xH100_TRT, category: datacenter, availability: available, accelerator: cuda, cooling: liquid,
         networking_topology: fat tree}
nodes: {include_local: true, ssh: []}
submission:
  submitter: Acme
  contact: ops@example.com
  division: closed
  notes: {hardware: "BIOS 2.1", software: "patched kernel"}
""")
    assert load_system_notes(path, submitter="Acme", division="closed") == {
        "system_name": "8xH100_TRT", "system_type": "datacenter", "status": "available", "cooling": "liquid",
        "host_networking_topology": "fat tree", "submitter_contact": "ops@example.com", "hw_notes": "BIOS 2.1",
        "sw_notes": "patched kernel"}


@pytest.mark.parametrize(("text", "message"), [
    ("coolng: air\n", "coolng: not a field of the systems json (did you mean cooling?)"),
    ("- a\n- b\n", "expected a mapping of systems-json fields, got list"),
    ("cooling: [air, water]\n", "cooling: expected text, got list"),
    ("cooling: air\n  bad: indent\n", "not valid YAML (line 2)"),
    ("system: {name: x, colour: red}\n", "system.colour: not a field of the systems json (did you mean "
                                         "system.cooling?)"),
])
def test_bad_notes_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(text)
    with pytest.raises(SystemNotesError) as err:
        load_system_notes(path)
    assert str(err.value) == f"{path}: {message}" and err.value.exit_code == 2
    with pytest.raises(SystemNotesError, match="cannot read"):
        load_system_notes(tmp_path / "missing.yaml")
    assert parse_system_notes(None) == {}


def test_contact_flag_wins(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text("submitter_contact: file@example.com\ncooling: air\n")
    assert system_overrides(path, contact="flag@example.com") == {"submitter_contact": "flag@example.com",
                                                                   "cooling": "air"}
    assert system_overrides(None, contact=None) == {}
    with pytest.raises(SystemNotesError, match="--contact"):
        system_overrides(None, contact=" ")


def test_cli_bad_notes_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text("coolng: air\n")
    r = CliRunner().invoke(app, ["collect", "--from", str(tmp_path), "--submitter", "Acme",
                                 "--system-notes", str(path)])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "coolng" in r.stderr


# --- MLCommons' validator on what mlrepro writes -----------------------------------------------------------

def test_mlperf_sysinfo_validates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "system.json"
    path.write_bytes(desc_json(_desc(overrides=NOTES)))
    rc, out = sysinfo_validate(path)
    assert rc == 0 and validate_problems(out) == [], out
    # without the contact it is "not ready to submit", and mlrepro says so too, naming the same field
    path.write_bytes(desc_json(_desc(overrides={k: v for k, v in NOTES.items() if k != "submitter_contact"})))
    rc, out = sysinfo_validate(path)
    assert rc != 0 and any(p.startswith("submitter_contact is empty") for p in validate_problems(out)), out


def test_meaningful_fields_are_a_subset_of_required() -> None:
    assert MEANINGFUL_FIELDS <= set(REQUIRED_FIELDS)
    # a notes file may set every field of the table, mlperf-sysinfo's own ones included
    assert {"submitter_contact", "system_size", "cooling", "is_network"} <= known_fields()
