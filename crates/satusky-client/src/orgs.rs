//! `/v1/orgs`: organizations and their members.

use satusky_types::Page;
use satusky_types::orgs::{
    AddMemberRequest, ChangeRoleRequest, CreateOrgRequest, DeleteOrgQuery, Member, Org,
    RenameOrgRequest, Role,
};
use satusky_types::page::PageQuery;

use crate::{ALL_PAGES_LIMIT, Client, ClientError, collect_pages};

impl Client {
    /// `GET /v1/orgs`: one page of the caller's organizations.
    pub async fn list_orgs(&self, query: &PageQuery) -> Result<Page<Org>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs"]);
        self.send_json(req.query(query), url).await
    }

    /// Every organization of the caller, following cursors.
    pub async fn list_all_orgs(&self) -> Result<Vec<Org>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_orgs(&query).await }
        })
        .await
    }

    /// `POST /v1/orgs`: create an organization owned by the caller.
    pub async fn create_org(&self, body: &CreateOrgRequest) -> Result<Org, ClientError> {
        let (req, url) = self.post(&["v1", "orgs"]);
        self.send_json(req.json(body), url).await
    }

    /// `GET /v1/orgs/{slug}`.
    pub async fn get_org(&self, slug: &str) -> Result<Org, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", slug]);
        self.send_json(req, url).await
    }

    /// `PATCH /v1/orgs/{slug}`: change the display name.
    pub async fn rename_org(&self, slug: &str, name: &str) -> Result<Org, ClientError> {
        let (req, url) = self.patch(&["v1", "orgs", slug]);
        let body = RenameOrgRequest {
            name: name.to_owned(),
        };
        self.send_json(req.json(&body), url).await
    }

    /// `DELETE /v1/orgs/{slug}?confirm={confirm}`. The server refuses unless
    /// `confirm` repeats the slug.
    pub async fn delete_org(&self, slug: &str, confirm: &str) -> Result<(), ClientError> {
        let (req, url) = self.delete(&["v1", "orgs", slug]);
        let query = DeleteOrgQuery {
            confirm: Some(confirm.to_owned()),
        };
        self.send_empty(req.query(&query), url).await
    }

    /// `GET /v1/orgs/{slug}/members`: one page of members.
    pub async fn list_members(
        &self,
        slug: &str,
        query: &PageQuery,
    ) -> Result<Page<Member>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", slug, "members"]);
        self.send_json(req.query(query), url).await
    }

    /// Every member of an organization, following cursors.
    pub async fn list_all_members(&self, slug: &str) -> Result<Vec<Member>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_members(slug, &query).await }
        })
        .await
    }

    /// `POST /v1/orgs/{slug}/members`: add an existing user by email.
    pub async fn add_member(
        &self,
        slug: &str,
        email: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", slug, "members"]);
        let body = AddMemberRequest {
            email: email.to_owned(),
            role,
        };
        self.send_json(req.json(&body), url).await
    }

    /// `PATCH /v1/orgs/{slug}/members/{user-id-or-email}`.
    pub async fn change_member_role(
        &self,
        slug: &str,
        user: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        let (req, url) = self.patch(&["v1", "orgs", slug, "members", user]);
        self.send_json(req.json(&ChangeRoleRequest { role }), url)
            .await
    }

    /// `DELETE /v1/orgs/{slug}/members/{user-id-or-email}`.
    pub async fn remove_member(&self, slug: &str, user: &str) -> Result<(), ClientError> {
        let (req, url) = self.delete(&["v1", "orgs", slug, "members", user]);
        self.send_empty(req, url).await
    }
}
