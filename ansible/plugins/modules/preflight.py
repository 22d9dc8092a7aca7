#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check the prerequisites of VRRP pair hosts with hactl
description:
  - Runs C(hactl preflight --json) once, on the controller - per pair host SSH login (and
    sudo), hostname, peer resolution, time sync, sysctls, the interface, VIPs in their subnet,
    VRRP passing both ways between peers, VIPs not yet answering, SELinux.
  - Read-only, C(changed) is always false; the task fails when a check fails, naming each
    failed check with its fix.
version_added: 0.1.0
author:
  - hactl contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hactl.vrrp.hactl
  - hactl.vrrp.hactl.remote
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the hosts before a deploy
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Preflight
      hactl.vrrp.preflight:
"""

RETURN = r"""
checks:
  description: Every check.
  returned: when hactl printed its report
  type: list
  elements: dict
  contains:
    host:
      description: The host.
      type: str
    check:
      description: The check.
      type: str
    outcome:
      description: pass, warn or fail.
      type: str
    detail:
      description: What was found.
      type: str
    fix:
      description: How to fix it.
      type: str
      returned: when the check did not pass
  sample:
    - {host: lb01, check: ssh login, outcome: pass, detail: as root}
warnings_count:
  description: How many checks warned.
  returned: when hactl printed its report
  type: int
failed_hosts:
  description: The hosts with a failed check.
  returned: on failure
  type: list
  elements: str
errors:
  description: hactl's error lines.
  returned: when hactl printed any
  type: list
  elements: str
rc:
  description: hactl's exit code.
  returned: always
  type: int
cmd:
  description: The hactl command line (it never holds a secret).
  returned: when hactl ran
  type: list
  elements: str
hactl_version:
  description: The version of hactl that ran.
  returned: when hactl ran
  type: str
  sample: 0.1.0
"""

from ansible_collections.hactl.vrrp.plugins.module_utils.hactl import module_main


def main():
    module_main('preflight')


if __name__ == '__main__':
    main()
