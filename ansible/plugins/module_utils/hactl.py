# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The core every hactl.vrrp module shares: the argument specs, the hactl
command line a task becomes, and the task result hactl's JSON report and
exit code become.

Nothing here runs a process or touches Ansible's objects: the action
plugins (``plugins/plugin_utils/action.py``) do that, and the unit tests
drive these functions with recorded hactl output. hactl is always run with
``--json``; a report is read as data, never scraped from a table.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.basic import AnsibleModule

# The oldest hactl whose JSON these modules read: the first to have
# ``hactl version --json``, ``-i -`` and deploy's ``config_diff``.
MIN_VERSION = (0, 1, 0)

# Module name -> hactl subcommand.
SUBCOMMANDS = {
    'deploy': 'deploy',
    'status': 'status',
    'audit': 'audit',
    'failover_test': 'failover-test',
    'preflight': 'preflight',
}

# `hactl failover-test --scenario`, in hactl's order.
SCENARIOS = ['graceful', 'kill', 'link', 'check', 'drain', 'partition']

COMMON_SPEC = dict(
    hactl_path=dict(type='path'),
    inventory=dict(type='path'),
    limit=dict(type='str'),
    forks=dict(type='int'),
    hactl_env=dict(type='dict', no_log=True),
)

_REMOTE_SPEC = dict(
    accept_new_host_keys=dict(type='bool', default=False),
)

SPECS = {
    'deploy': dict(
        COMMON_SPEC,
        agent_bin=dict(type='path'),
        templates=dict(type='path'),
        **_REMOTE_SPEC
    ),
    'status': dict(COMMON_SPEC, **_REMOTE_SPEC),
    'preflight': dict(COMMON_SPEC, **_REMOTE_SPEC),
    'audit': dict(
        COMMON_SPEC,
        fail_on_warning=dict(type='bool', default=False),
        timeout=dict(type='int'),
    ),
    'failover_test': dict(
        COMMON_SPEC,
        scenarios=dict(type='list', elements='str', choices=SCENARIOS),
        pair=dict(type='str'),
        instance=dict(type='str'),
        allow_non_lab=dict(type='bool', default=False, aliases=['yes']),
        **_REMOTE_SPEC
    ),
}

# The inventory hactl reads from stdin (the play's, as Ansible resolved it).
STDIN = '-'


def module_main(module):
    """What a module file does when Ansible runs it on a host instead of
    through its action plugin: validate the arguments (validate-modules
    reads the spec here), then refuse."""
    ansible_module = AnsibleModule(argument_spec=SPECS[module],
                                   supports_check_mode=module != 'failover_test')
    ansible_module.fail_json(msg='hactl.vrrp.%s runs on the controller through its action plugin'
                             % module)


def run(module, params, binary, runner, stdin=None, check_mode=False, diff_mode=False):
    """One task: check hactl's version, run the command, read the report.

    ``runner(argv, stdin)`` runs a process and returns ``(rc, stdout,
    stderr)``; ``stdin`` is the inventory JSON when hactl reads the play's
    inventory.
    """
    rc, out, err = runner(version_command(binary), None)
    version, why = check_version(rc, out, err)
    if why:
        return dict(failed=True, changed=False, msg='%s: %s' % (binary, why))
    argv = command(module, params, binary, check_mode=check_mode, diff_mode=diff_mode)
    rc, out, err = runner(argv, stdin)
    result = interpret(module, params, rc, out, err, check_mode=check_mode, diff_mode=diff_mode)
    result['cmd'] = argv
    result['hactl_version'] = version
    return result


def command(module, params, binary, check_mode=False, diff_mode=False):
    """The argv of one hactl run for ``module`` with validated ``params``."""
    argv = [binary, '-i', params.get('inventory') or STDIN]
    if params.get('limit'):
        argv += ['--limit', params['limit']]
    if params.get('forks') is not None:
        argv += ['--forks', str(params['forks'])]
    if module == 'deploy' and params.get('templates'):
        argv += ['--templates', params['templates']]
    argv += ['--json', SUBCOMMANDS[module]]
    if params.get('accept_new_host_keys'):
        argv.append('--accept-new-host-keys')
    if module == 'deploy':
        if check_mode:
            argv.append('--check')
        if diff_mode:
            argv.append('--diff')
        if params.get('agent_bin'):
            argv += ['--agent-bin', params['agent_bin']]
    elif module == 'audit':
        if params.get('timeout') is not None:
            argv += ['--timeout', str(params['timeout'])]
    elif module == 'failover_test':
        if params.get('scenarios'):
            argv += ['--scenario', ','.join(params['scenarios'])]
        if params.get('pair'):
            argv += ['--pair', params['pair']]
        if params.get('instance'):
            argv += ['--instance', params['instance']]
        if params.get('allow_non_lab'):
            argv.append('--yes')
    return argv


def version_command(binary):
    """The argv that asks hactl for its version."""
    return [binary, 'version', '--json']


def check_version(rc, stdout, stderr):
    """``(version string, None)`` when hactl is new enough, else
    ``(None, why)``."""
    try:
        report = json.loads(stdout) if rc == 0 else None
        version = report['version']
        numbers = tuple(int(x) for x in re.match(r'(\d+)\.(\d+)\.(\d+)', version).groups())
    except (ValueError, TypeError, KeyError, AttributeError):
        detail = _first_line(stderr) or _first_line(stdout) or 'no output'
        return None, ('hactl is too old or not hactl: `hactl version --json` failed '
                      '(rc %s: %s); these modules need hactl %s or newer'
                      % (rc, detail, _dotted(MIN_VERSION)))
    if numbers < MIN_VERSION:
        return None, ('hactl %s is too old: these modules need hactl %s or newer'
                      % (version, _dotted(MIN_VERSION)))
    return version, None


def interpret(module, params, rc, stdout, stderr, check_mode=False, diff_mode=False):
    """The task result of one hactl run: its report as data, ``changed``,
    and ``failed`` with ``msg`` as the exit code and report say."""
    result = dict(changed=False, rc=rc)
    errors = error_lines(stderr)
    if errors:
        result['errors'] = errors
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        report = None
    if report is None:
        result['failed'] = True
        why = '; '.join(errors) or _first_line(stderr) or 'no output'
        result['msg'] = 'hactl %s failed (rc %s): %s' % (SUBCOMMANDS[module], rc, why)
        return result
    return _INTERPRETERS[module](result, report, params, rc, errors, check_mode, diff_mode)


def error_lines(stderr):
    """hactl's ``error: ...`` lines, without the prefix."""
    out = []
    for line in (stderr or '').splitlines():
        line = line.strip()
        if line.startswith('error: '):
            out.append(line[len('error: '):])
    return out


# ===== one per module =====

def _deploy(result, report, params, rc, errors, check_mode, diff_mode):
    hosts = report.get('hosts', [])
    result['check'] = bool(report.get('check'))
    result['hosts'] = hosts
    result['preflight'] = report.get('preflight', {}).get('checks', [])
    result['changed_hosts'] = [h['host'] for h in hosts if h.get('changed')]
    result['changed'] = bool(result['changed_hosts'])
    if diff_mode:
        result['diff'] = [
            dict(
                before_header='%s:%s' % (h['host'], h['config_diff']['path']),
                after_header='%s:%s (new)' % (h['host'], h['config_diff']['path']),
                before=h['config_diff']['before'],
                after=h['config_diff']['after'],
            )
            for h in hosts if h.get('config_diff')
        ]
    failed = [h for h in hosts if not h.get('ok')]
    if rc != 0 or failed:
        result['failed'] = True
        result['failed_hosts'] = [h['host'] for h in failed]
        reasons = ['%s: %s' % (h['host'], _strip_host(h['host'], h.get('error') or 'failed'))
                   for h in failed]
        result['msg'] = 'deploy failed on %d host(s) (rc %s): %s' % (
            len(failed), rc, '; '.join(reasons or errors or ['no host failed, yet hactl did']))
    elif result['changed']:
        verb = 'would change' if check_mode else 'changed'
        result['msg'] = '%s %s' % (verb, ', '.join(result['changed_hosts']))
    else:
        result['msg'] = 'nothing to change on %d host(s)' % len(hosts)
    return result


def _status(result, report, params, rc, errors, check_mode, diff_mode):
    instances = report.get('instances', [])
    result['instances'] = instances
    result['masters'] = dict(('%s/%s' % (i['pair'], i['instance']), i.get('masters', []))
                             for i in instances)
    unreachable = {}
    for i in instances:
        for h in i.get('hosts', []):
            if h.get('error'):
                unreachable[h['host']] = h['error']
    if rc != 0 or unreachable:
        result['failed'] = True
        result['unreachable'] = sorted(unreachable)
        reasons = ['%s: %s' % (h, _strip_host(h, e)) for h, e in sorted(unreachable.items())]
        result['msg'] = 'status failed (rc %s): %s' % (rc, '; '.join(reasons or errors or ['failed']))
    else:
        result['msg'] = '; '.join('%s master %s' % (k, ','.join(v) or 'none')
                                  for k, v in result['masters'].items())
    return result


def _audit(result, report, params, rc, errors, check_mode, diff_mode):
    status = report.get('status', 'UNKNOWN')
    findings = report.get('findings', [])
    result['status'] = status
    result['exit_code'] = report.get('exit_code', rc)
    result['instances'] = report.get('instances', [])
    result['findings'] = findings
    fails = status in ('CRITICAL', 'UNKNOWN') or (status == 'WARNING' and params.get('fail_on_warning'))
    summary = '; '.join(_finding_line(f) for f in findings)
    result['msg'] = 'audit %s%s' % (status, (': ' + summary) if summary else '')
    if fails:
        result['failed'] = True
    return result


def _finding_line(f):
    where = '%s/%s' % (f['pair'], f['instance']) if f.get('instance') else f['pair']
    return '%s %s %s: %s' % (f['severity'], f['kind'], where, f['detail'])


def _failover_test(result, report, params, rc, errors, check_mode, diff_mode):
    drills = report if isinstance(report, list) else []
    result['drills'] = drills
    bad = [d for d in drills if d.get('verdict') not in ('ok', 'n/a')]
    lines = ['%s/%s %s: %s%s' % (d['pair'], d['instance'], d['scenario'], d['verdict'],
                                 (' (%s)' % d['reason']) if d.get('reason') else '')
             for d in drills]
    result['msg'] = '; '.join(lines) or 'no drill ran'
    if rc != 0 or bad:
        result['failed'] = True
        result['msg'] = 'failover test failed (rc %s): %s' % (rc, result['msg'])
    return result


def _preflight(result, report, params, rc, errors, check_mode, diff_mode):
    checks = report.get('checks', [])
    result['checks'] = checks
    failed = [c for c in checks if c.get('outcome') == 'fail']
    result['warnings_count'] = len([c for c in checks if c.get('outcome') == 'warn'])
    if rc != 0 or failed:
        result['failed'] = True
        result['failed_hosts'] = sorted(set(c['host'] for c in failed))
        result['msg'] = 'preflight failed (rc %s): %s' % (rc, '; '.join(
            '%s %s: %s%s' % (c['host'], c['check'], _strip_host(c['host'], c['detail']),
                             (' (fix: %s)' % c['fix']) if c.get('fix') else '')
            for c in failed) or '; '.join(errors) or 'failed')
    else:
        result['msg'] = '%d checks passed on %d host(s)' % (
            len(checks), len(set(c['host'] for c in checks)))
    return result


_INTERPRETERS = {
    'deploy': _deploy,
    'status': _status,
    'audit': _audit,
    'failover_test': _failover_test,
    'preflight': _preflight,
}


def _strip_host(host, text):
    """hactl's messages often start with the host already."""
    prefix = '%s: ' % host
    return text[len(prefix):] if text.startswith(prefix) else text


def _first_line(text):
    for line in (text or '').splitlines():
        if line.strip():
            return line.strip()
    return ''


def _dotted(version):
    return '.'.join(str(x) for x in version)
