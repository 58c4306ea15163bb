"""``cropaudit validate CONFIG...``: check configs without running them."""

from __future__ import annotations

from cropaudit.commands import options as o


def main(args) -> int:
    from cropaudit import config as config_mod
    from cropaudit import fileio
    from cropaudit.errors import ConfigError, UserError
    from cropaudit.model.plugin import code_specs, describe_code
    from cropaudit.transforms.run_plan import check_plan, plan_config

    failed = 0
    for path in args.configs:
        try:
            cfg = config_mod.load(path)
        except ConfigError as exc:
            print(f"INVALID {exc}")
            failed += 1
            continue
        try:  # the plan on the local runner, with the manifest's groups when it can be read
            plan, groups = plan_config(cfg, fileio.dirname(path))
            check_plan(plan, "direct", args.allow_large_plan, groups)
        except UserError as exc:
            print(f"INVALID {path}: {exc}")
            failed += 1
            continue
        sweep = f", {cfg.sweep_size()} sweep variants" if cfg.sweep.active else ""
        print(f"ok      {path}: {cfg.name} ({cfg.config_hash[:12]}){sweep}")
        print(f"        plan: {plan.describe()}")
        for spec in code_specs(cfg.model.specs):  # what `run` would import and run
            print(f"        runs code: {spec}: {describe_code(spec)} (needs --allow-plugins)")
    return 1 if failed else 0


COMMAND = o.Command(
    "validate",
    "check experiment configs without running them",
    (o.arg("configs", nargs="+", help="config files (TOML)"), o.allow_large_plan("accept")),
    main,
)
