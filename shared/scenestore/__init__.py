"""scenestore: the path and storage layer shared by every Auto Shorts storage function.

Shipped as the Lambda layer; the functions under ``functions/`` import it by absolute name.
Importing the package itself is cheap on purpose: each module pulls in boto3/pymongo only when used.
"""

__version__ = "0.1.0"
