"""The /ogc pages that our own routes render (catalog/features: landing page, conformance,
collections, items), from the same templates as the pages pygeoapi renders.

pygeoapi's `render_j2_template` translates the config it is given once per language and
keeps that for the life of the process (docs/upstream.md), so a page rendered through it after
a publish would still describe the first release the process saw. This renders with the live
release's config, translated for each page, in a Jinja environment like pygeoapi's: our
templates first (catalog/ogc/templates), then pygeoapi's, its template filters, and the
words from `server.locale_dir` (catalog/ogc/translations.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pygeoapi import __version__ as pygeoapi_version
from pygeoapi import l10n, util

from catalog.ogc.translations import DOMAIN

FILTERS = {name: getattr(util, name) for name in (
    "to_json", "format_datetime", "format_duration", "human_size", "get_path_basename",
    "get_breadcrumbs", "filter_dict_by_key_value")}


@cache
def _environment(templates: str) -> Environment:
    environment = Environment(loader=FileSystemLoader([templates, str(util.TEMPLATESDIR)]),
                              extensions=["jinja2.ext.i18n"], autoescape=select_autoescape())
    environment.filters.update(FILTERS)
    environment.globals.update(FILTERS)
    return environment


@cache
def _translations(locale_dir: str, language: str) -> Translations:
    return Translations.load(locale_dir, [language], domain=DOMAIN)


def render(config: dict, template: str, data: dict, locale: str) -> str:
    """The page `template` over `data` in `locale` ('ru-RU'), with `config` (the live
    release's) translated into that language."""
    language = l10n.str2locale(locale)
    environment = _environment(str(Path(config["server"]["templates"]["path"])))
    translations = _translations(str(config["server"]["locale_dir"]), str(language))
    # One environment for every page: the words of this page's language, for this render.
    template_object = environment.get_template(template)
    context = {"config": l10n.translate_struct(config, language), "data": data,
               "locale": language, "version": pygeoapi_version,
               "gettext": translations.gettext, "ngettext": translations.ngettext}
    return template_object.render(context)
