"""The public web (docs/open-data.md#public-web): server-rendered pages (map, zone, sensor, station,
dataset pages, the embeddable widget, offline /docs) over the read model, mounted into the app by
`civicair.runtime.build_app` through `civicair.web.site.install`."""
