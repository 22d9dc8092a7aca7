#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: status
short_description: Who is master of each VRRP instance, read with hactl
description:
  - Runs C(hactl status) once, on the controller - per instance and host the planned role,
    whether the daemon runs, state and priority from the agent, and the VIPs found on the
    hosts' interfaces.
  - Read-only - never changes anything, C(changed) is always false. Fails when a host cannot
    be reached.
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
- name: Who holds the VIPs
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the status
      hactl.vrrp.status:
      register: vrrp

    - name: The master of web_lb/www must be lb01
      ansible.builtin.assert:
        that: vrrp.masters['web_lb/www'] == ['lb01']
"""

RETURN = r"""
instances:
  description: One entry per instance.
  returned: when hactl printed its report
  type: list
  elements: dict
  contains:
    pair:
      description: The pair.
      type: str
    instance:
      description: The instance.
      type: str
    vrid:
      description: Its virtual router id.
      type: int
    planned_master:
      description: The host the inventory makes master.
      type: str
    masters:
      description: The hosts whose agent says MASTER.
      type: list
      elements: str
    vip_holders:
      description: For each VIP, the hosts holding it on their interfaces.
      type: dict
    hosts:
      description: Per host C(host), C(role), C(planned_priority), C(agent_up), C(state),
        C(priority), C(effective_priority), C(holds), C(error).
      type: list
      elements: dict
masters:
  description: C(pair/instance) to the hosts that say MASTER.
  returned: when hactl printed its report
  type: dict
  sample: {web_lb/www: [lb01], api_lb/api: [lb03]}
unreachable:
  description: The hosts that could not be reached.
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
    module_main('status')


if __name__ == '__main__':
    main()
