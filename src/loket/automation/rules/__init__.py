"""The rules engine: when something happens (a trigger) and conditions hold, act.

- ``conditions``: the allow-listed fields and operators, cleaning and evaluating;
- ``actions``: the allow-listed actions (shared with macros), cleaning and carrying out;
- ``engine``: events and timers → rules → runs, with the loop guards;
- ``service``: managing rules and reading their history.
"""
