"""Short scripted treatments for the tests, as the scenario TOML the session
runner and ``nanohub study`` read (sim/scenarios/ holds the shipped ones)."""

CAPS = "session_cap = 300000, site_cap = 100000, rate_cap = 2400"


def treatment(name, description, duration_s, lesions, treat_s, last, faults="", bots=16,
              seed=1):
    """A scenario's TOML: ``lesions`` as (site, depth_um, target_um), 3 bots each.
    The operator consents at 0.5 s, deploys 3 bots to each site from 1.0 s (0.2 s
    apart), arms at 3 s and treats for ``treat_s`` from 4 s; ``last`` is the
    step that ends it, (at, verb, args as TOML or None). ``faults``: [[fault]]
    tables, as TOML."""
    out = ['name = "%s"' % name, 'description = "%s"' % description,
           "duration_s = %d" % duration_s, "bots = %d" % bots, "seed = %d" % seed]
    for site, depth, target in lesions:
        out += ["[[lesion]]", 'site = "%s"' % site, "depth_um = %d" % depth,
                "target_um = %d" % target, "bots = 3"]
    steps = [(0.5, "consent", "{ patient = 4711 }")]
    steps += [(1.0 + 0.2 * i, "deploy", '{ site = "%s", count = 3 }' % lesion[0])
              for i, lesion in enumerate(lesions)]
    steps += [(3.0, "arm", None), (4.0, "treat_start", "{ duration = %d, %s }" % (treat_s, CAPS)),
              last]
    for at, verb, args in steps:
        out += ["[[operator]]", "at = %.1f" % at, 'do = "%s"' % verb]
        if args is not None:
            out.append("args = %s" % args)
    return "\n".join(out) + "\n" + faults


def side_by_side(run, keys):
    """{key: run(key)} for every key, each run in a thread of its own, all at once
    (a session's VM and gateway die with its thread, which lives until the
    session is done). A run that raises fails the caller, with its key."""
    import threading
    out, errors = {}, {}

    def one(key):
        try:
            out[key] = run(key)
        except Exception as e:              # reported below, not lost in a thread
            errors[key] = e

    threads = [threading.Thread(target=one, args=(key,)) for key in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out
