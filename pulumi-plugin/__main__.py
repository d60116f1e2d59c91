"""What Pulumi runs for `pulumi package add` (PulumiPlugin.yaml): the component provider."""

from image_classifier.provider import main

main()
