//! The domain: accounts, API keys, datasets, models, versions, jobs, deployments.
