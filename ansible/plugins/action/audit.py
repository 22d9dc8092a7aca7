# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""hactl.vrrp.audit: `hactl audit` once, on the controller (see plugin_utils/action.py)."""

from __future__ import annotations

from ansible_collections.hactl.vrrp.plugins.plugin_utils.action import HactlAction


class ActionModule(HactlAction):
    MODULE = 'audit'
