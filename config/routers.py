"""Keep the user-data store on its own database alias, and nothing else there."""

from __future__ import annotations

USERDATA_APP = "userdata"
USERDATA_ALIAS = "userdata"


class UserDataRouter:
    def db_for_read(self, model, **hints):
        return USERDATA_ALIAS if model._meta.app_label == USERDATA_APP else "default"

    def db_for_write(self, model, **hints):
        return USERDATA_ALIAS if model._meta.app_label == USERDATA_APP else "default"

    def allow_relation(self, obj1, obj2, **hints):
        # No foreign keys across the two stores: the app refers to accounts by id only.
        return (obj1._meta.app_label == USERDATA_APP) == (obj2._meta.app_label == USERDATA_APP)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == USERDATA_APP:
            return db == USERDATA_ALIAS
        return db == "default"
