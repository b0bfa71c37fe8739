//! The kinds the reconciler manages and how to reach them generically.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, GroupVersionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    ResourceQuota,
    LimitRange,
    NetworkPolicy,
    Secret,
    PersistentVolumeClaim,
    Deployment,
    Service,
    HttpRoute,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
}

impl Kind {
    /// Kinds an app owns (labelled with its id), in apply order.
    pub const APP_OWNED: [Kind; 7] = [
        Kind::Secret,
        Kind::PersistentVolumeClaim,
        Kind::Deployment,
        Kind::Service,
        Kind::HttpRoute,
        Kind::PodDisruptionBudget,
        Kind::HorizontalPodAutoscaler,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ResourceQuota => "ResourceQuota",
            Kind::LimitRange => "LimitRange",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Secret => "Secret",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::HttpRoute => "HTTPRoute",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
        }
    }

    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Namespace => ApiResource::erase::<Namespace>(&()),
            Kind::ResourceQuota => ApiResource::erase::<ResourceQuota>(&()),
            Kind::LimitRange => ApiResource::erase::<LimitRange>(&()),
            Kind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
            Kind::Secret => ApiResource::erase::<Secret>(&()),
            Kind::PersistentVolumeClaim => ApiResource::erase::<PersistentVolumeClaim>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::HttpRoute => ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                "httproutes",
            ),
            Kind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
            Kind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
