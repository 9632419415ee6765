"""dragon.jupyter: Jupyter in a Dragon fabric: the dragon-jupyter server command and the "Python 3 (Dragon)" kernel."""
# The modules here import Jupyter's packages only when they run (server, kernel): a process of the
# fabric that only unpickles an output sink (_output) must not need them.
KERNEL_NAME = "dragon_python3"
DISPLAY_NAME = "Python 3 (Dragon)"
