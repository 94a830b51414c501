"""Pieces the load benches share: nginx processes, wrk, CPU and machine accounting.

The bench scripts run as scripts, so each puts ``benches/load`` on ``sys.path`` and imports
``common.<module>``.
"""
