"""Safety signals across patients: rates per session from recorded sessions,
grouped by firmware, plan and bot batch, watched by the maximized SPRT.

``sessions`` reads one row per session from the session store
(``nanohub record``); ``maxsprt`` holds the test and its exact critical
values; ``detect`` runs it over the sessions in time order; ``report``
draws it; ``cohort`` simulates cohorts to measure it; ``cli`` is
``nanohub signals``.
"""
