#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy
short_description: Deploy VRRP pairs with hactl (hactl-agent or keepalived)
description:
  - Runs C(hactl deploy) once, on the controller, for every pair of the inventory (or the
    hosts of O(limit)) - preflight, render each host's keepalived.conf, upload what differs,
    start or reload the daemon, and wait until each host is healthy, rolling within a pair
    (backups first, the master last) and rolling a failed host back.
  - In check mode it runs C(hactl deploy --check) and reports what would change; with
    C(--diff) it returns every changed host's config before and after, the VRRP password
    redacted.
  - The action plugin does the work; this file holds the documentation and argument spec.
version_added: 0.1.0
author:
  - hactl contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hactl.vrrp.hactl
  - hactl.vrrp.hactl.remote
options:
  agent_bin:
    description:
      - The hactl-agent binary to deploy (C(--agent-bin)). Default - the C(hactl-agent)
        next to the hactl binary.
    type: path
  templates:
    description:
      - A directory of your own templates (C(--templates)); missing files fall back to the
        built-in ones.
    type: path
attributes:
  check_mode:
    support: full
    details: C(hactl deploy --check); nothing changes on any host.
  diff_mode:
    support: full
    details: The config of every host whose config changes, before and after, C(auth_pass) redacted.
seealso:
  - module: hactl.vrrp.preflight
  - module: hactl.vrrp.status
"""

EXAMPLES = r"""
- name: Deploy the VRRP pairs
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy every pair of the play's inventory
      hactl.vrrp.deploy:
      register: deployed

    - name: Show what changed
      ansible.builtin.debug:
        var: deployed.changed_hosts

- name: Deploy one pair, ten hosts at a time, trusting new host keys
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy web_lb
      hactl.vrrp.deploy:
        limit: web_lb
        forks: 10
        accept_new_host_keys: true
        hactl_path: /usr/local/bin/hactl
"""

RETURN = r"""
changed:
  description: Whether some host changed (or would, in check mode).
  returned: always
  type: bool
changed_hosts:
  description: The hosts that changed (or would, in check mode).
  returned: when hactl printed its report
  type: list
  elements: str
  sample: [lb02, lb01]
check:
  description: Whether hactl ran with C(--check).
  returned: when hactl printed its report
  type: bool
hosts:
  description: hactl's line per host, in deploy order.
  returned: when hactl printed its report
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host.
      type: str
    pair:
      description: Its pair (the child group of C(hactl_pairs)).
      type: str
    changed:
      description: A non-empty plan was applied (or would be, in check mode).
      type: bool
    ok:
      description: The host is healthy (or its plan was made, in check mode).
      type: bool
    error:
      description: Why the host failed.
      type: str
      returned: when it failed
    plan:
      description: What was (or would be) done, or the no-op's reason.
      type: list
      elements: str
    rolled_back:
      description: The host was put back as it was.
      type: bool
    seconds:
      description: How long the host took.
      type: float
    diff:
      description: The unified diff of the config, C(auth_pass) redacted.
      type: str
      returned: in diff mode, when the config changes
    config_diff:
      description: The config before and after (C(path), C(before), C(after)), C(auth_pass) redacted.
      type: dict
      returned: in diff mode, when the config changes
  sample:
    - host: lb02
      pair: web_lb
      changed: true
      ok: true
      plan: [upload /etc/hactl/keepalived.conf (mode 600), start hactl-agent]
      rolled_back: false
      seconds: 3.2
preflight:
  description: The preflight checks deploy ran first (C(host), C(check), C(outcome), C(detail), C(fix)).
  returned: when hactl printed its report
  type: list
  elements: dict
failed_hosts:
  description: The hosts that failed.
  returned: on failure
  type: list
  elements: str
diff:
  description: Ansible's diff, one entry per host whose config changes.
  returned: in diff mode
  type: list
  elements: dict
errors:
  description: hactl's error lines (invalid inventory, unreachable hosts, rejected configs).
  returned: when hactl printed any
  type: list
  elements: str
  sample: ["<stdin>: host lb01: hactl_intrface: unknown hactl variable (did you mean `hactl_interface`?)"]
rc:
  description: hactl's exit code (0 every host ok, 1 a host failed, 2 bad inventory or command line).
  returned: always
  type: int
cmd:
  description: The hactl command line (it never holds a secret).
  returned: when hactl ran
  type: list
  elements: str
  sample: [hactl, -i, '-', --json, deploy]
hactl_version:
  description: The version of hactl that ran.
  returned: when hactl ran
  type: str
  sample: 0.1.0
"""

from ansible_collections.hactl.vrrp.plugins.module_utils.hactl import module_main


def main():
    module_main('deploy')


if __name__ == '__main__':
    main()
