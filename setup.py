"""Which packages the wheel holds; everything else about it is in pyproject.toml.

The site's pages and static files live at the top of the source tree (templates/,
static/). The wheel carries them inside the appliance package (appliance/templates,
appliance/static), so a site installed from it needs nothing from a checkout;
appliance.settings.shipped() finds either.
"""

from setuptools import find_packages, setup

SHIPPED = {"appliance.templates": "templates", "appliance.static": "static"}

setup(
    packages=[*find_packages(include=["appliance*", "security*", "failover*"]), *SHIPPED],
    package_dir=SHIPPED,
    package_data={package: ["**/*"] for package in SHIPPED},
)
