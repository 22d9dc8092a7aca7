# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The options and attributes every hactl.vrrp module shares."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  hactl_path:
    description:
      - The hactl binary. Without it, C(hactl) is looked up on the controller's E(PATH).
      - The task fails with a clear message when it is missing or older than the
        collection needs (hactl prints its version with C(hactl version --json)).
    type: path
  inventory:
    description:
      - An inventory file for hactl to read itself (C(hactl -i FILE)).
      - Without it, hactl gets the play's inventory as Ansible resolved it, as the JSON of
        C(ansible-inventory --list) on stdin (C(hactl -i -)), so vault-encrypted values,
        C(group_vars/), dynamic inventories and extra vars apply exactly as in the play.
        Only the C(hactl_*) variables, the connection variables and C(inventory_file) are sent.
    type: path
  limit:
    description:
      - Only these hosts, an Ansible host pattern (C(hactl --limit)).
      - Defaults to the C(--limit) of C(ansible-playbook), when one is given.
    type: str
  forks:
    description:
      - How many hosts hactl works on at once (C(hactl --forks)); hactl's default is 5.
    type: int
  hactl_env:
    description:
      - "Extra environment variables for hactl, for example the variable that a
        C(hactl_auth_pass) of the form C({env: VAR}) names. The task keyword
        C(environment) does not reach hactl, which runs on the controller."
      - Their values are secret - never logged, and masked in the result.
    type: dict
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: full
    details: The task runs once per play on the controller; hactl reaches every host over SSH itself.
  platform:
    platforms: posix
notes:
  - The task runs C(hactl --json) once, on the controller, whichever hosts the play targets;
    a play on C(localhost) without fact gathering is the usual one.
  - Secrets never reach hactl's command line (the inventory goes through stdin), and every
    C(hactl_auth_pass) value of the inventory is masked in the task result.
  - Against a C(hactl lab), hactl finds the lab's SSH key through the hosts' C(inventory_file),
    so run the play with the inventory file the lab was built from.
"""

    REMOTE = r"""
options:
  accept_new_host_keys:
    description:
      - Record the host key of a host that has none in known_hosts yet (trust on first use,
        C(--accept-new-host-keys)). A changed key is always refused.
    type: bool
    default: false
"""
