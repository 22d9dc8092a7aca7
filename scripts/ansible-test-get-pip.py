"""Stands in for the get-pip bootstrap script that ansible-test downloads
into ~/.ansible/test/cache/ before it makes each sanity test's venv (from a
host outside the package registries this project may reach). It installs
the pip ansible-test asks for from PyPI, with the pip of the venv that runs
ansible-test; scripts/test-ansible puts it in place, naming that venv's
site-packages below.

ansible-test runs it as `get-pip [pip options] pip==VERSION --no-setuptools
--no-wheel`; the last two are get-pip's own flags, which pip does not know.
"""

import runpy
import sys

OUTER_SITE_PACKAGES = "@SITE_PACKAGES@"

sys.path.insert(0, OUTER_SITE_PACKAGES)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
