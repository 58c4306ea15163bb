"""``cropaudit validate CONFIG...``: check configs without running them."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("validate", help="check experiment configs without running them")
    p.add_argument("configs", nargs="+", help="config files (TOML)")
    p.set_defaults(func=main)


def main(args) -> int:
    from cropaudit import config as config_mod
    from cropaudit.errors import ConfigError

    failed = 0
    for path in args.configs:
        try:
            cfg = config_mod.load(path)
        except ConfigError as exc:
            print(f"INVALID {exc}")
            failed += 1
            continue
        sweep = f", {cfg.sweep_size()} sweep variants" if cfg.sweep.active else ""
        print(f"ok      {path}: {cfg.name} ({cfg.config_hash[:12]}){sweep}")
    return 1 if failed else 0
