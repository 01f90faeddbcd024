"""The report's verdicts, each computed from measured numbers by a stated rule with a bootstrap CI
over instances (the unit that carries independent evidence). Checks that cannot fail are
labelled SANITY and are not counted as evidence."""
from __future__ import annotations

from dataclasses import dataclass

from bench.experiments.theory.config import Config
from bench.experiments.theory.experiments import escape_key
from bench.experiments.theory.formatting import fmt, pct
from bench.experiments.theory.stats import mean_ci


@dataclass
class Verdict:
    """One line of the report: ``kind`` is "evidence" (can fail), "sanity" (cannot) or "limit"."""

    kind: str
    label: str  # e.g. AGREES / DOES NOT AGREE / DOES NOT MIX / INCONCLUSIVE / REPRODUCED ...
    claim: str
    text: str

    def line(self) -> str:
        tag = "" if self.kind == "evidence" else f"{self.kind.upper()}, not counted: "
        return f"- **{tag}{self.label}** ({self.claim}): {self.text}"


def ci(t: tuple[float, float, float] | list[float], spec: str = ".3g") -> str:
    """'m [lo, hi]' for a (value, lo, hi) triple."""
    return f"{fmt(t[0], spec)} [{fmt(t[1], spec)}, {fmt(t[2], spec)}]"


def verdicts(out: dict, cfg: Config) -> list[Verdict]:
    """Every verdict of the report, in order."""
    esc, land, te = out["escape"], out["landscape"], out["teps"]
    vs = [*escape_verdicts(esc, cfg), *landscape_verdicts(land, esc, cfg)]
    vs += [*reference_verdicts(te, cfg)]
    for s in te["eps"]:
        vs += eps_verdicts(s, cfg)
    vs += k_verdicts(te["k"], cfg)
    vs.append(Verdict("limit", "NOT TESTABLE HERE", "constants",
                      "the theorem's constants (C_1..C_4, how large C must be, the e^(-Omega(n)) term) are unspecified, "
                      "so only exponents and trends are compared; depth is fixed at d = " + str(cfg.depth) + "."))
    return vs


# ----------------------------------------------------------------------------- escape
def escape_verdicts(esc: dict, cfg: Config) -> list[Verdict]:
    """Per setting: Langevin - GD fraction in B(z*, r) after starting at -rho z* (CI over instances)."""
    out = []
    for k, c in cfg.escape_settings:
        key = escape_key(k, c)
        gd, lg, gain = esc["runs"][f"{key}/neg_star/GD"], esc["runs"][f"{key}/neg_star/Langevin"], esc["gain"][key]
        label = escape_label(gain)
        wrong = mean_ci(lg["per_instance_wrong"], seed=12)
        where_f = ("" if lg.get("stuck_min_f") is None else
                   f", where beta f >= {cfg.beta(k) * lg['stuck_min_f']:.0f}, so mu's density there is at most "
                   f"e^-{cfg.beta(k) * lg['stuck_min_f']:.0f} of its value at z*")
        mix = (f" Langevin itself still has {ci(wrong, '.2f')} of its runs per instance on the wrong side (<z, z*> < 0"
               f"{where_f}) after {cfg.escape_steps} steps: not mixed within this budget (metastable)."
               if wrong[1] > 0 else
               f" Langevin runs on the wrong side at the end: {ci(wrong, '.2f')} per instance (CI includes 0).")
        out.append(Verdict(
            "evidence", label, f"escape from -rho z*, widths {gd['widths']}",
            f"rule: Langevin better if the 95% CI of the per-instance difference (Langevin - GD) in the fraction "
            f"ending in B(z*, r) is above 0, worse if below, else no resolved difference. Measured: GD "
            f"{pct(gd['star'][-1])}, Langevin {pct(lg['star'][-1])}; difference {ci((gain['mean'], gain['lo'], gain['hi']), '.2f')} "
            f"over {gain['instances']} instances (x {cfg.escape_chains} chains that share each landscape: the "
            f"effective sample size is the instance count).{mix}"))
    return out


def escape_label(gain: dict) -> str:
    """Langevin better / worse / no resolved difference, from the CI of the difference."""
    if gain["lo"] > 0:
        return "LANGEVIN ESCAPES BETTER"
    if gain["hi"] < 0:
        return "GD BETTER"
    return "NO RESOLVED DIFFERENCE"


# ----------------------------------------------------------------------------- landscape
def below(ci3: tuple[float, float, float] | list[float] | dict, threshold: float) -> bool | None:
    """True if the CI lies below ``threshold``, False if above, None if it straddles it (unresolved)."""
    lo, hi = (ci3["lo"], ci3["hi"]) if isinstance(ci3, dict) else (ci3[1], ci3[2])
    return True if hi <= threshold else False if lo > threshold else None


def premise_checks(row: dict, rho_d: float, stay: dict | None, cfg: Config) -> dict[str, bool | None | str]:
    """The three parts of the landscape premise at one width, each from its CI: True, False, None
    (CI straddles the threshold) or "n/a" (not measured)."""
    rho = row["rho"]
    rho_ok = (True if rho_d - cfg.premise_rho_tol <= rho[1] and rho[2] <= rho_d + cfg.premise_rho_tol else
              False if rho[1] > rho_d + cfg.premise_rho_tol or rho[2] < rho_d - cfg.premise_rho_tol else None)
    stall = "n/a" if stay is None else below({"lo": -stay["hi"], "hi": -stay["lo"]}, -cfg.premise_stay)
    return {"critical": below(row["grad_ratio"], cfg.premise_grad_ratio), "rho": rho_ok, "stall": stall}


def premise_label(chk: dict) -> str:
    """yes if every part holds, no if any fails, else unresolved (some CI straddles its threshold or n/a)."""
    vals = list(chk.values())
    if any(v is False for v in vals):
        return "no"
    return "yes" if all(v is True for v in vals) else "unresolved"


def gd_stay(esc: dict, k: int, row: dict) -> dict | None:
    """Fraction of GD runs from -rho z* still in B(-rho z*, r) at the end, mean and CI over instances
    (from the escape runs, else from the landscape row's own GD runs; None if neither)."""
    run = esc["runs"].get(f"{escape_key(k, row['expansion'])}/neg_star/GD")
    if run is not None:
        stay, wrong, n = run["per_instance_neg"], run["wrong"][-1], len(run["per_instance_neg"])
    elif "gd_stay" in row:
        stay, wrong, n = row["gd_stay"], sum(row["gd_wrong"]) / len(row["gd_wrong"]), len(row["gd_stay"])
    else:
        return None
    m, lo, hi = mean_ci(stay, seed=11)
    return {"mean": m, "lo": lo, "hi": hi, "wrong": wrong, "instances": n}


def landscape_verdicts(land: dict, esc: dict, cfg: Config) -> list[Verdict]:
    """Is the expected landscape (the theorem's premise) reproduced at some measured width? Does it converge?"""
    rows, rho_d = land["rows"], land["rho_d"]
    parts, by = [], {"yes": [], "unresolved": [], "no": []}
    for r in rows:
        chk = premise_checks(r, rho_d, gd_stay(esc, cfg.diag_k, r), cfg)
        by[premise_label(chk)].append(f"{r['expansion']:g}")
        parts.append(f"c = {r['expansion']:g} (widths {r['widths']}): critical {yn(chk['critical'])}, rho = rho_d "
                     f"{yn(chk['rho'])}, GD stalls {yn(chk['stall'])}")
    label = (f"REPRODUCED at c = {', '.join(by['yes'])}" if by["yes"] else
             f"UNRESOLVED at c = {', '.join(by['unresolved'])}, NOT REPRODUCED below" if by["unresolved"] else
             "NOT REPRODUCED")
    out = [Verdict(
        "evidence", label, f"landscape premise, k = {cfg.diag_k}, d = {cfg.depth}",
        f"rule: at a width, -rho z* is critical if the CI of the median ||grad f(-rho z*)|| / typical gradient is "
        f"below {cfg.premise_grad_ratio:g}; rho matches rho_d = {rho_d:.3f} if the CI of the median rho lies within "
        f"+-{cfg.premise_rho_tol:g}; GD stalls if the CI of the fraction of GD runs still in B(-rho z*, r) after "
        f"{cfg.escape_steps} steps is above {cfg.premise_stay:g}. Each part is yes / no when its CI is on one side, "
        f"'unresolved' when the CI straddles the threshold; the premise holds at a width when all three are yes. "
        f"Measured: " + "; ".join(parts) + " (numbers in the landscape table).")]
    tr = land["trend"]
    if tr["lo"] is None:
        out.append(Verdict("evidence", "INCONCLUSIVE", "landscape converges with width",
                           f"gradient-ratio exponent vs n_d: {fmt(tr['slope'])}, no CI."))
    else:
        lab = "SHRINKS WITH WIDTH" if tr["hi"] < 0 else "GROWS WITH WIDTH" if tr["lo"] > 0 else "NO RESOLVED TREND"
        out.append(Verdict(
            "evidence", lab, "landscape converges to the expected one as widths grow",
            f"rule: the log-log slope of the median gradient ratio vs n_d, CI over instances, below 0. Measured "
            f"{tr['slope']:.2f} [{tr['lo']:.2f}, {tr['hi']:.2f}] over n_d = {[r['n_d'] for r in rows]}"
            + (f"; at this rate the ratio halves for every x{2 ** (-1 / tr['slope']):.1f} in n_d." if tr["slope"] < 0
               else ".")))
    return out


def yn(v: bool | None | str) -> str:
    return v if isinstance(v, str) else "unresolved" if v is None else "yes" if v else "no"


# ----------------------------------------------------------------------------- t_eps
def mixing_label(reached: list[int], instances: int) -> str:
    """Mixed within the budget only if every instance reached W2 <= eps at every eps (or k)."""
    return "MIXES IN BUDGET" if all(r == instances for r in reached) else "DOES NOT MIX IN BUDGET"


def exponent_label(fit: dict, bound: float) -> str:
    """A fitted exponent against an upper bound: DOES NOT AGREE if significantly above it."""
    if fit["lo"] is None:
        return "INCONCLUSIVE"
    if fit["lo"] > bound:
        return "DOES NOT AGREE"
    return "INCONCLUSIVE" if fit["hi"] - fit["lo"] > 2 else "AGREES"


def reference_verdicts(te: dict, cfg: Config) -> list[Verdict]:
    """Did each MALA reference forget its start (W2(ref, far) vs the floor W2(ref, twin))?"""
    settings = {(s["k"], s["expansion"]): s for s in te["eps"]}
    for r in te["k"]["rows"]:
        settings.setdefault((r["k"], te["k"]["expansion"]), {"k": r["k"], "expansion": te["k"]["expansion"],
                                                             "widths": r["widths"], "ref": r["ref"]})
    parts, ok_all = [], True
    for s in settings.values():
        ref = s["ref"]
        ok = ref["far_ci"][1] <= ref["floor_ci"][2]
        ok_all &= ok
        parts.append(f"widths {s['widths']}: W2(ref, far) {ci(ref['far_ci'])} vs floor {ci(ref['floor_ci'])}, "
                     f"acceptance {min(ref['acceptance']):.2f}-{max(ref['acceptance']):.2f}")
    wrong = [(s["widths"], r) for s in settings.values() for r in s.get("rows", []) if r.get("wrong_min_beta_f")]
    wrong += [(r["widths"], r["row"]) for r in te["k"]["rows"] if r["row"].get("wrong_min_beta_f")]
    beta_f = min((r["wrong_min_beta_f"] for _, r in wrong), default=None)
    tail = ("" if beta_f is None else
            f" Chains of the t_eps runs that ended on the wrong side (<z, z*> < 0) had beta f >= {beta_f:.0f}: mu's "
            f"density there is at most e^-{beta_f:.0f} of its value at z* (a density bound, not a "
            "mass bound: a Laplace-level argument that the reference, which never visits that region, misses no "
            "visible mass).")
    return [Verdict("evidence", "REFERENCE MIXED" if ok_all else "REFERENCE NOT MIXED", "the posterior sample",
                    f"rule: the CI of the median W2 between the reference and chains started ~{cfg.ref_far:g} away must "
                    f"overlap the CI of the floor (reference vs an independent twin). " + "; ".join(parts)
                    + ". This checks mixing within the basin of z* only. Mass elsewhere: a chain outside B(z*, 2r) "
                    "with beta f below ~10 is in mu's own tail (density e^(-beta f) relative to z*), one with beta f "
                    ">> 10 sits where mu has no visible mass (the t_eps tables give the smallest beta f outside)." + tail)]


def eps_verdicts(s: dict, cfg: Config) -> list[Verdict]:
    """Mixing within the budget at every eps; exponent of t_eps vs 1/eps against the theorem's; GD control."""
    out: list[Verdict] = []
    where = f"widths {s['widths']}"
    lg = [r for r in s["rows"] if r["method"] == "Langevin"]
    floor = s["ref"]["floor_ci"][0]
    unres = [r["eps"] for r in lg if r["eps"] < cfg.teps_floor_margin * floor]
    out.append(Verdict(
        "evidence", mixing_label([r["reached"] for r in lg], s["instances"]), f"W2(Z_t, mu) <= eps reached, {where}",
        f"rule: every instance reaches W2 <= eps by eta t = {cfg.teps_time_cap:g}. "
        + ("; ".join(f"eps {r['eps']:g}: {r['reached']}/{s['instances']} instances, {pct(r['outside_final'])} of chains "
                     f"outside B(z*, {2 * cfg.radius:g}) at the end" for r in lg))
        + (f". Unresolved eps (below {cfg.teps_floor_margin:g} x the floor {floor:.3f}): {unres}" if unres else "") + "."))
    fit, a_th = s["fit"], s["theorem_exponent"]
    if fit["lo"] is None:
        out.append(Verdict("evidence", "INCONCLUSIVE", f"exponent of t_eps vs 1/eps, {where}",
                           f"fewer than 2 eps with a finite median CI (fit over {s['fit_eps']}) or censored resamples "
                           f"(valid {pct(fit['valid'])})."))
    else:
        lab = exponent_label(fit, a_th)
        out.append(Verdict(
            "evidence", lab, f"exponent of t_eps vs 1/eps, {where}",
            f"rule: the theorem's sufficient count log(1/eps)/eps^2 has slope {a_th:.2f} over eps {s['fit_eps']}; the "
            f"measured exponent must not be significantly steeper (CI lower end <= {a_th:.2f}; a CI wider than 2 is "
            f"inconclusive). Measured t_eps ~ eps^-a with a = {fit['slope']:.2f} [{fit['lo']:.2f}, {fit['hi']:.2f}] "
            f"(median over {s['instances']} instances, censored ones counted as inf; fit over the eps whose median's CI is "
            "finite; bootstrap over instances)."))
    out.append(Verdict(
        "sanity", "a >= 2 expected", f"{where}",
        f"with eta = eps^2 any process needs ~1/eta = eps^-2 steps to move a fixed distance, so a >= 2 holds for GD "
        f"too; the old fixed-ball hitting time gives exponent {fmt(s['ball_slope'])} here (eps with a finite median: {s.get('ball_eps')}) (steps to B(z*, {cfg.radius:g}),"
        f" median over chains)."))
    point = s["ref"]["point_mass_ci"]
    below = [r for r in lg if r["eps"] < point[1] and r["eps"] >= cfg.teps_floor_margin * floor]
    gd = {r["eps"]: r for r in s["rows"] if r["method"] == "GD"}
    gd_txt = "; ".join(f"GD at eps {e:g}: {r['reached']}/{s['instances']} instances (final W2 median "
                       f"{median(r['final_w2']):.3f})" for e, r in gd.items())
    if not below:
        out.append(Verdict(
            "evidence", "INCONCLUSIVE", f"does the chain sample mu, not just find z*? {where}",
            f"rule: Langevin must reach some resolved eps (>= {cfg.teps_floor_margin:g} x floor {floor:.3f}) below the "
            f"W2 between a point mass at z* and mu ({ci(point)}, CI lower end); no measured eps lies between, so at "
            f"this size W2 <= eps does not distinguish sampling from optimising. {gd_txt}."))
    else:
        least = min(r["reached"] for r in below)
        lab = ("SAMPLES mu" if least == s["instances"] else
               f"SAMPLES mu IN {least}/{s['instances']} INSTANCES" if 2 * least > s["instances"] else
               "DOES NOT SAMPLE mu IN BUDGET")
        out.append(Verdict(
            "evidence", lab, f"does the chain sample mu, not just find z*? {where}",
            f"rule: every instance (or, for the weaker label 'in x/n instances', a majority) reaches W2 <= eps within "
            f"the budget at each resolved eps (>= {cfg.teps_floor_margin:g} x floor "
            f"{floor:.3f}) below the W2 between a point mass at z* and mu ({ci(point)}, CI lower end); a law collapsed "
            "on z* (what GD converges to) cannot. " + "; ".join(
                f"eps {r['eps']:g}: Langevin {r['reached']}/{s['instances']} (final W2 median {median(r['final_w2']):.3f})"
                for r in below) + (f"; control: {gd_txt}" if gd_txt else "") + "."))
    return out


def median(v: list[float]) -> float:
    s = sorted(v)
    return s[(len(s) - 1) // 2]


def k_verdicts(kres: dict, cfg: Config) -> list[Verdict]:
    """t_eps vs k at fixed eps: mixing per k and the exponent (theorem: no k dependence for beta = C k)."""
    rows, fit = kres["rows"], kres["fit"]
    out = [Verdict(
        "evidence", mixing_label([r["row"]["reached"] - len(r["row"]["t_eps"]) for r in rows], 0),
        f"vs k at eps = {kres['eps']:g}",
        f"rule: every instance reaches W2 <= eps by eta t = {cfg.teps_time_cap:g}. " + "; ".join(
            f"k = {r['k']} (widths {r['widths']}): {r['row']['reached']}/{len(r['row']['t_eps'])}, "
            f"{pct(r['row']['outside_final'])} of chains outside B(z*, {2 * cfg.radius:g}) at the end" for r in rows)
        + ".")]
    if fit["lo"] is None:
        out.append(Verdict("evidence", "INCONCLUSIVE", "exponent of t_eps vs k",
                           f"fit over k = {kres['fit_k']} (the k whose median's CI is finite): no CI."))
    else:
        lab = exponent_label(fit, 0.0)
        out.append(Verdict(
            "evidence", lab, "exponent of t_eps vs k (theorem: constants depend on d only)",
            f"rule: t_eps ~ k^b at fixed eps with beta = C k; agrees unless b's CI is above 0 (a CI wider than 2 is "
            f"inconclusive). Measured b = {fit['slope']:.2f} [{fit['lo']:.2f}, {fit['hi']:.2f}] over k = "
            f"{kres['fit_k']} (the k whose median's CI is finite; censored instances count as inf: see the line above)"
            + ("; t_eps falls with k (CI below 0), so the k-free bound is not tight here." if fit["hi"] < 0 else ".")))
    return out
