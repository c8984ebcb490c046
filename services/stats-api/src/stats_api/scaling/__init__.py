"""`GET /scaling`: the autoscaling of both APIs, read from the namespace's HPAs and Deployments.

cluster.py   which Kubernetes API to read (the pod's service account, or KUBECONFIG), if any
objects.py   what each field of the body means, read from one HPA and one Deployment
watcher.py   ScalingWatcher: list, then watch, in the background; the latest objects in memory
"""
