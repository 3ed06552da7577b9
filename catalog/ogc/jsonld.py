"""schema.org JSON-LD of /ogc/collections, each dataset with its own licence.

pygeoapi gives every dataset of a catalog the one licence of the server's metadata
(`metadata.license.url`); ours differ per dataset, so the catalog states none and this module
answers `f=jsonld` on the collections in front of pygeoapi, from its public functions: the
collection descriptions (`gen_collection`), the catalog (`jsonldify`) and each dataset
(`jsonldify_collection`), with the dataset's licence (docs/upstream.md).
"""

from __future__ import annotations

import copy
import logging
from http import HTTPStatus

from pygeoapi.api import API, APIRequest
from pygeoapi.api.collection import gen_collection
from pygeoapi.linked_data import jsonldify, jsonldify_collection
from pygeoapi.provider.base import ProviderGenericError
from pygeoapi.util import to_json

LOGGER = logging.getLogger(__name__)


@jsonldify
def catalog_description(api: API, request: APIRequest) -> dict:
    """The DataCatalog that pygeoapi's decorator describes from the config."""
    return copy.deepcopy(api.fcmld)


def collections_jsonld(api: API, request: APIRequest, dataset: str | None,
                       licences: dict[str, str]) -> tuple[dict, int, str]:
    """(headers, status, content) for /collections or /collections/{dataset} in JSON-LD;
    `licences` maps each dataset to its licence's URL."""
    headers = request.get_response_headers(**api.api_headers)
    resources = api.config["resources"]
    collections = [key for key, value in resources.items() if value.get("type") == "collection"]
    if dataset is not None and dataset not in collections:
        return api.get_exception(HTTPStatus.NOT_FOUND, headers, request.format, "NotFound",
                                 "Collection not found")
    catalog = catalog_description(api, request)
    catalog.pop("license", None)  # the catalog has none: each dataset names its own
    datasets = []
    for key in [dataset] if dataset is not None else collections:
        if dataset is None and resources[key].get("visibility", "default") == "hidden":
            continue
        try:
            collection = gen_collection(api, request, key, request.locale)
        except ProviderGenericError as err:  # as pygeoapi: left out of the list, else 500
            LOGGER.warning("collection %s not described: %s", key, err)
            if dataset is None:
                continue
            return api.get_exception(HTTPStatus.INTERNAL_SERVER_ERROR, headers, request.format,
                                     "NoApplicableCode", "Error generating collection")
        described = jsonldify_collection(api, collection, request.locale)
        described["license"] = licences.get(key)
        datasets.append(described)
    catalog["dataset"] = datasets[0] if dataset is not None else datasets
    return headers, HTTPStatus.OK, to_json(catalog, api.pretty_print)
