"""The command line: claude-budget's commands and the tools behind them (doctor, uninstall, watch, suggest)."""
