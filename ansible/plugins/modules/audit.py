#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audit
short_description: Split-brain and drift audit of VRRP pairs with hactl
description:
  - Runs C(hactl audit --json) once, on the controller - for every instance which hosts hold
    its VIPs (read from their interfaces), how many agents say MASTER, config drift between
    peers, VRID and multicast group collisions, agents down, stale VIPs.
  - Read-only, C(changed) is always false. The task fails when the audit is CRITICAL (a
    split-brain, for example) or UNKNOWN (it could not judge), and with
    O(fail_on_warning=true) also on WARNING, so a playbook can gate on it.
version_added: 0.1.0
author:
  - hactl contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hactl.vrrp.hactl
options:
  fail_on_warning:
    description:
      - Fail the task on a WARNING audit too (drift, an agent down), not only on CRITICAL.
    type: bool
    default: false
  timeout:
    description:
      - Bound the whole audit to this many seconds (C(--timeout)); hosts that have not
        answered by then are UNKNOWN. hactl's default is 30.
    type: int
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Gate on split-brain
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Audit every pair
      hactl.vrrp.audit:
        fail_on_warning: true
        timeout: 20

- name: Audit and look at the findings without failing
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Audit
      hactl.vrrp.audit:
      register: audit
      ignore_errors: true

    - name: Split-brains found
      ansible.builtin.debug:
        msg: "{{ audit.findings | selectattr('kind', 'equalto', 'split_brain') | list }}"
"""

RETURN = r"""
status:
  description: The worst finding's severity - OK, WARNING, CRITICAL or UNKNOWN.
  returned: when hactl printed its report
  type: str
  sample: CRITICAL
exit_code:
  description: The Nagios exit code of the status (0, 1, 2, 3).
  returned: when hactl printed its report
  type: int
findings:
  description: Every finding.
  returned: when hactl printed its report
  type: list
  elements: dict
  contains:
    severity:
      description: CRITICAL, WARNING or UNKNOWN.
      type: str
    kind:
      description: C(split_brain), C(no_master), C(drift), C(collision), C(agent_down), C(stale_vip), C(unreachable), ...
      type: str
    pair:
      description: The pair.
      type: str
    instance:
      description: The instance, null for pair-wide findings.
      type: str
    hosts:
      description: The hosts concerned.
      type: list
      elements: str
    detail:
      description: What was found.
      type: str
  sample:
    - severity: CRITICAL
      kind: split_brain
      pair: web_lb
      instance: www
      hosts: [lb01, lb02]
      detail: "VIP 10.213.0.100 on lb01 and lb02; 2 agents say MASTER: lb01, lb02"
instances:
  description: Per instance C(pair), C(instance), C(vips), C(holders), C(masters), C(agents_up),
    C(unreachable), C(hosts), C(status).
  returned: when hactl printed its report
  type: list
  elements: dict
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
    module_main('audit')


if __name__ == '__main__':
    main()
