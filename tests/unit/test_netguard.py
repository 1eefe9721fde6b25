"""The SSRF guard: which addresses may receive webhooks, at subscribe time and after
resolving at delivery time (`resolve_checked`), and the `deny_private_targets` setting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import EVENT, Receiver, ae, assert_error, ok, ok_json, write_config

from asyncevents_cli.netguard import TargetRefused, refusal, resolve_checked


@pytest.mark.parametrize(
    "address, private, refused",
    [
        ("169.254.169.254", False, "cloud-metadata"),
        ("169.254.0.1", False, "link-local"),
        ("fe80::1", False, "link-local"),
        ("fd00:ec2::254", False, "cloud-metadata"),
        ("::ffff:169.254.169.254", False, "cloud-metadata"),
        ("127.0.0.1", False, None),
        ("10.1.2.3", False, None),
        ("::1", False, None),
        ("93.184.216.34", False, None),
        ("127.0.0.1", True, "non-global"),
        ("10.1.2.3", True, "non-global"),
        ("192.168.0.10", True, "non-global"),
        ("172.16.5.4", True, "non-global"),
        ("100.64.0.1", True, "non-global"),
        ("::1", True, "non-global"),
        ("fc00::1", True, "non-global"),
        ("0.0.0.0", True, "non-global"),
        ("93.184.216.34", True, None),
        ("2606:4700::1111", True, None),
        # IPv6 forms that carry the metadata address (issue 18)
        ("::a9fe:a9fe", False, "cloud-metadata"),  # IPv4-compatible
        ("::169.254.169.254", False, "cloud-metadata"),
        ("64:ff9b::a9fe:a9fe", False, "cloud-metadata"),  # NAT64
        ("64:ff9b::169.254.169.254", False, "cloud-metadata"),
        ("2002:a9fe:a9fe::1", False, "cloud-metadata"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:5601:5601", False, "cloud-metadata"),  # Teredo, client 169.254.169.254
        ("::ffff:a9fe:a9fe", False, "cloud-metadata"),  # mapped, hex spelling
        ("64:ff9b::808:808", False, None),  # NAT64 of a public address is fine
        ("2002:808:808::1", True, None),  # 6to4 of a public address too
        # deny_private_targets: everything not globally routable (issue 18)
        ("192.0.0.8", True, "non-global"),
        ("192.0.0.170", True, "non-global"),
        ("224.0.0.1", True, "non-global"),
        ("239.255.255.250", True, "non-global"),
        ("ff02::1", True, "non-global"),
        ("240.0.0.1", True, "non-global"),
        ("255.255.255.255", True, "non-global"),
        ("64:ff9b::7f00:1", True, "non-global"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", True, "non-global"),  # NAT64 of 10.0.0.1
        ("64:ff9b:1::a00:1", True, "non-global"),  # local-use NAT64
        ("::7f00:1", True, "non-global"),  # IPv4-compatible 127.0.0.1
        ("2002:7f00:1::1", True, "non-global"),  # 6to4 of 127.0.0.1
        ("2002:c0a8:1::1", True, "non-global"),  # 6to4 of 192.168.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", True, "non-global"),  # Teredo, client 127.0.0.1
        ("8.8.8.8", True, None),
    ],
)
def test_refusal(address: str, private: bool, refused: str | None) -> None:
    why = refusal(address, private)
    assert (why is None) if refused is None else (refused in (why or ""))


def test_a_name_is_refused_if_any_address_it_resolves_to_is() -> None:
    """DNS can change between subscribe and delivery: delivery resolves and checks again."""

    def rebinding(_host: str, _port: int) -> list[str]:
        return ["93.184.216.34", "169.254.169.254"]

    with pytest.raises(TargetRefused, match="hooks.example resolves to 169.254.169.254"):
        resolve_checked("hooks.example", 443, resolver=rebinding)
    assert resolve_checked("hooks.example", 443, resolver=lambda _h, _p: ["93.184.216.34"]) == ["93.184.216.34"]


def test_the_system_resolver_is_checked_too() -> None:
    assert resolve_checked("localhost", 80) and "127.0.0.1" in resolve_checked("localhost", 80)
    with pytest.raises(TargetRefused, match="localhost resolves to"):
        resolve_checked("localhost", 80, deny_private=True)
    with pytest.raises(TargetRefused, match="169.254.169.254"):
        resolve_checked("2852039166", 80)  # the decimal form of the metadata address


def test_deny_private_targets_refuses_loopback_at_subscribe(tmp_path: Path) -> None:
    config = write_config(tmp_path, deny_private_targets=True)
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.0.0.5/h"):
        assert_error(ae(config, "subscribe", EVENT, url, "--secret", "s"), 2, "SSRF guard", "deny_private_targets")
    assert ok_json(config, "subscriptions", "list") == []
    # Off by default: an operator's loopback receiver is legitimate.
    (tmp_path / "default").mkdir()
    default = write_config(tmp_path / "default")
    ok(default, "subscribe", EVENT, "http://127.0.0.1:8080/hook", "--secret", "s")


def test_delivery_refuses_a_metadata_target_whatever_the_store_holds(tmp_path: Path, receiver: Receiver) -> None:
    """A recipient written before the guard existed (or behind its back) is refused when
    delivering: the attempt fails with the refusal, and nothing is sent."""
    config = write_config(tmp_path, max_deaths=0)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    conn = sqlite3.connect(tmp_path / ".ae" / "ae.db")
    conn.execute("UPDATE subscriptions SET recipient_url = 'http://169.254.169.254/latest/meta-data/'")
    conn.commit()
    conn.close()
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "all", "--until-empty")
    [attempt] = ok_json(config, "logs")
    uuid = attempt["uuid"]
    [logged] = ok_json(config, "trace", uuid)["attempts"]
    assert logged["success"] is False and logged["status_code"] is None
    assert logged["response_data"].startswith("TargetRefused: refused by the SSRF guard: 169.254.169.254")
    assert receiver.requests == []


def test_deny_private_targets_is_checked_again_at_delivery(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path, max_deaths=0)
    ok(config, "subscribe", EVENT, receiver.endpoint("/by-ip"), "--secret", "s")
    ok(config, "subscribe", EVENT, receiver.endpoint("/by-name").replace("127.0.0.1", "localhost"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "all", "--until-empty", env={"AE_DENY_PRIVATE_TARGETS": "true"})
    responses = sorted(
        a["response_data"]
        for a in (ok_json(config, "trace", row["uuid"])["attempts"][0] for row in ok_json(config, "logs"))
    )
    assert receiver.requests == []
    assert "127.0.0.1 is a loopback" in responses[0] or "127.0.0.1 is a loopback" in responses[1]
    assert any("localhost resolves to 127.0.0.1" in r for r in responses), responses
    # With the setting off (the default) both are delivered.
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "all", "--until-empty")
    assert len(receiver.requests) == 2
