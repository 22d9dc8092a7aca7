#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: failover_test
short_description: Failover drills on VRRP pairs with hactl
description:
  - Runs C(hactl failover-test --json) once, on the controller - breaks each selected pair on
    purpose (one drill at a time), measures the takeover and puts the pair back.
  - Refuses an inventory that is not a C(hactl lab) (or whose hosts do not all set
    C(hactl_lab=true)) unless O(allow_non_lab=true), exactly like the CLI without C(--yes).
  - C(changed) is false - every drill restores its pair; the task fails when a drill is not
    ok. Check mode skips the task.
version_added: 0.1.0
author:
  - hactl contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hactl.vrrp.hactl
  - hactl.vrrp.hactl.remote
options:
  scenarios:
    description:
      - The drills to run, in order (default - all of them).
    type: list
    elements: str
    choices: [graceful, kill, link, check, drain, partition]
  pair:
    description:
      - Only this pair.
    type: str
  instance:
    description:
      - Only this instance.
    type: str
  allow_non_lab:
    description:
      - Run on an inventory that is not marked as a lab (C(hactl failover-test --yes)).
        Drills break pairs on purpose.
      - The alias is the CLI's name; YAML 1.1 reads an unquoted C(yes) key as a boolean,
        so write it quoted.
    type: bool
    default: false
    aliases: ["yes"]
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Drill a graceful failover of api_lb on the lab
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Stop the master's daemon, time the takeover, restore
      hactl.vrrp.failover_test:
        pair: api_lb
        scenarios: [graceful]
      register: drill

    - name: Takeover time
      ansible.builtin.debug:
        msg: "{{ drill.drills[0].takeover_ms }} ms (bound {{ drill.drills[0].bound_ms }} ms)"
"""

RETURN = r"""
drills:
  description: One row per drill, as C(hactl failover-test --json) prints it.
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
    scenario:
      description: The drill.
      type: str
    verdict:
      description: ok, failed, skipped or n/a.
      type: str
    ok:
      description: The verdict is ok.
      type: bool
    reason:
      description: Why it is not ok.
      type: str
    master_before:
      description: The VIP holder before the fault.
      type: str
    master_during:
      description: The VIP holder during the fault.
      type: str
    master_after:
      description: The VIP holder after the undo.
      type: str
    takeover_ms:
      description: Fault to the new master answering for the VIP.
      type: int
    measured_by:
      description: prober or agent.
      type: str
    agent_takeover_ms:
      description: The new master's own transition stamp, from the fault.
      type: int
    bound_ms:
      description: The RFC's bound for the scenario.
      type: int
    margin_ms:
      description: The margin allowed above the bound.
      type: int
    probes_sent:
      description: ICMP probes sent to the VIP.
      type: int
    probes_lost:
      description: Probes without an answer.
      type: int
    split_brain_seen:
      description: Two holders were seen (partition).
      type: bool
    audit_split_brain:
      description: The hosts the audit's split_brain finding named (partition).
      type: list
      elements: str
    restored:
      description: The pair ended as configured.
      type: bool
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
    module_main('failover_test')


if __name__ == '__main__':
    main()
