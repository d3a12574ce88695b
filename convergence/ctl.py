# -*- test-case-name: tests.test_ctl -*-
"""
C{convergencectl}: administer accounts in the server's database.

Exit codes: 0 success, 1 a refused request (no such account, bad JID or
password, domain not served), 2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from getpass import getpass
from typing import Callable

from convergence.auth.accounts import Accounts
from convergence.config import Config, ConfigError, load_config
from convergence.store.errors import AccountExists, NoSuchAccount, StoreError
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_im import SqliteImStore
from convergence.store.sqlite_pep import SqlitePepStore

__all__ = ["main"]

PROG = "convergencectl"
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class _Refused(Exception):
    """A request the administrator has to correct; exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Administer convergence accounts."
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data directory (overrides the config)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in (
        ("adduser", "create an account"),
        ("passwd", "change an account's password"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("jid", metavar="JID", help="the account, user@domain")
        command.add_argument(
            "--password", metavar="PW", help="the password (prompted for if omitted)"
        )
    command = commands.add_parser("deluser", help="delete an account")
    command.add_argument("jid", metavar="JID", help="the account, user@domain")
    command = commands.add_parser("listusers", help="list accounts")
    command.add_argument("domain", metavar="DOMAIN", nargs="?", help="only this domain")
    return parser


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _account(args: argparse.Namespace, config: Config) -> tuple[str, str]:
    """Prepare the command's JID and check its domain is served."""
    localpart, domain = Accounts.parse(args.jid)
    if domain not in config.domains:
        raise _Refused(
            f"{domain} is not a served domain (configured: {', '.join(config.domains)})"
        )
    return localpart, domain


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    try:
        first = getpass("Password: ")
        second = getpass("Retype password: ")
    except (EOFError, KeyboardInterrupt):
        raise _Refused("no password given") from None
    if first != second:
        raise _Refused("passwords do not match")
    return first


def _adduser(args: argparse.Namespace, config: Config, accounts: Accounts) -> None:
    localpart, domain = _account(args, config)
    jid = f"{localpart}@{domain}"
    if accounts.credentials(localpart, domain) is not None:
        raise AccountExists(jid)
    accounts.add(jid, _password(args))
    _out(f"added {jid}")


def _passwd(args: argparse.Namespace, config: Config, accounts: Accounts) -> None:
    localpart, domain = _account(args, config)
    jid = f"{localpart}@{domain}"
    if accounts.credentials(localpart, domain) is None:
        raise NoSuchAccount(jid)
    accounts.set_password(jid, _password(args))
    _out(f"changed the password of {jid}")


def _deluser(args: argparse.Namespace, config: Config, accounts: Accounts) -> None:
    """
    Delete the account with everything stored for it (the store's delete),
    and, as in-band removal does through C{account/removed} (XEP-0077 3.2),
    what other local accounts hold of it: their roster items of it lose
    their subscriptions, their PEP nodes its explicit subscriptions.  A
    running server does not hear of it: contacts online keep what their
    rosters cached until they log in again, and remote contacts are not
    told (no presence can be sent from here).
    """
    localpart, domain = _account(args, config)
    jid = f"{localpart}@{domain}"
    accounts.remove(jid)
    im = SqliteImStore(config.database_path)
    pep = SqlitePepStore(config.database_path)
    try:
        im.cancel_subscriptions_of(jid)
        pep.remove_subscriber(jid)
    finally:
        im.close()
        pep.close()
    _out(f"deleted {jid}")


def _listusers(args: argparse.Namespace, config: Config, accounts: Accounts) -> None:
    for jid in accounts.list(args.domain):
        _out(jid)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config, Accounts], None]] = {
    "adduser": _adduser,
    "passwd": _passwd,
    "deluser": _deluser,
    "listusers": _listusers,
}


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the command line C{argv} (default C{sys.argv[1:]}); return the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as e:
        _error(str(e))
        return EXIT_USAGE
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = SqliteAccountStore(config.database_path)
    except OSError as e:
        _error(f"cannot create data directory {config.data_dir}: {e.strerror}")
        return EXIT_USAGE
    except (sqlite3.Error, StoreError) as e:
        _error(f"cannot open database {config.database_path}: {e}")
        return EXIT_USAGE
    try:
        accounts = Accounts(store, config.xmpp.scram_iterations)
        _COMMANDS[args.command](args, config, accounts)
    except AccountExists as e:
        _error(f"account already exists: {e}")
        return EXIT_REFUSED
    except NoSuchAccount as e:
        _error(f"no such account: {e}")
        return EXIT_REFUSED
    except (_Refused, ValueError, StoreError, sqlite3.Error) as e:
        _error(str(e))
        return EXIT_REFUSED
    finally:
        store.close()
    return EXIT_OK
